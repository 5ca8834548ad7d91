-- Remove one tenant's schema and roles from the shared database. Safe when already gone.
-- psql variables: schema, owner_role, app_role.
\set ON_ERROR_STOP on
BEGIN;
SELECT pg_advisory_xact_lock(7311002) \gset
DROP SCHEMA IF EXISTS :"schema" CASCADE;
SELECT format('DELETE FROM tenantctl_admin.tenant_schemas WHERE schema_name = %L', :'schema')
WHERE to_regclass('tenantctl_admin.tenant_schemas') IS NOT NULL \gexec
-- Roles are server-wide: after a tier change they also serve the tenant's dedicated
-- database on this server. Then only this database's grants go, and the roles stay.
SELECT EXISTS (
    SELECT 1 FROM pg_shdepend d
    WHERE d.refclassid = 'pg_authid'::regclass
      AND d.refobjid IN (SELECT oid FROM pg_roles WHERE rolname IN (:'app_role', :'owner_role'))
      AND d.dbid <> (SELECT oid FROM pg_database WHERE datname = current_database())
      AND NOT (d.classid = 'pg_database'::regclass
               AND d.objid = (SELECT oid FROM pg_database WHERE datname = current_database()))
) AS used_elsewhere \gset
\if :used_elsewhere
REVOKE ALL ON DATABASE :"DBNAME" FROM :"app_role";
ALTER ROLE :"app_role" IN DATABASE :"DBNAME" RESET ALL;
\else
SELECT format('DROP OWNED BY %I CASCADE', rolname) FROM pg_roles
WHERE rolname IN (:'app_role', :'owner_role') \gexec
DROP ROLE IF EXISTS :"app_role";
DROP ROLE IF EXISTS :"owner_role";
\endif
COMMIT;
