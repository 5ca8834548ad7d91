-- Remove one tenant's schema and roles from the shared database. Safe when already gone.
-- psql variables: schema, owner_role, app_role.
\set ON_ERROR_STOP on
BEGIN;
SELECT pg_advisory_xact_lock(7311002) \gset
DROP SCHEMA IF EXISTS :"schema" CASCADE;
SELECT format('DELETE FROM tenantctl_admin.tenant_schemas WHERE schema_name = %L', :'schema')
WHERE to_regclass('tenantctl_admin.tenant_schemas') IS NOT NULL \gexec
SELECT format('DROP OWNED BY %I CASCADE', rolname) FROM pg_roles
WHERE rolname IN (:'app_role', :'owner_role') \gexec
DROP ROLE IF EXISTS :"app_role";
DROP ROLE IF EXISTS :"owner_role";
COMMIT;
