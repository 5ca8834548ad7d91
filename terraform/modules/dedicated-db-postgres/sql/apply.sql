-- Converge one tenant's dedicated database. Idempotent: safe to run again.
-- Connected to the server's maintenance database (PGDATABASE).
-- psql variables: tenant_id, database, schema, owner_role, app_role, connection_limit,
-- statement_timeout. Environment: TENANT_APP_VERIFIER (SCRAM verifier of the password).
\set ON_ERROR_STOP on
\getenv app_verifier TENANT_APP_VERIFIER
-- CREATE DATABASE cannot run in a transaction: serialise tenants with a session lock.
SELECT pg_advisory_lock(7311003) \gset

-- Tenant roles are server-wide, so the database this file runs in (the server's
-- maintenance database: the state store's in the embedded default) is closed to PUBLIC
-- as well, when the admin owns it: a tenant reaches only its own database. Other roles
-- that need this database get CONNECT granted explicitly by its owner.
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', datname)
FROM pg_database
WHERE datname = current_database() AND pg_has_role(current_user, datdba, 'USAGE') \gexec

SELECT format('CREATE ROLE %I NOLOGIN', :'owner_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner_role') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"owner_role" NOLOGIN NOINHERIT NOCREATEDB NOCREATEROLE;
ALTER ROLE :"app_role" LOGIN NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION
    CONNECTION LIMIT :connection_limit PASSWORD :'app_verifier';
ALTER ROLE :"app_role" SET statement_timeout = :'statement_timeout';
ALTER ROLE :"app_role" SET search_path = :"schema";

SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'owner_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'database') \gexec
ALTER DATABASE :"database" OWNER TO :"owner_role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO :"app_role";
-- Drift repair: the app role holds nothing beyond what this file grants it.
SELECT format('REVOKE %I FROM %I', r.rolname, :'app_role')
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
WHERE m.member = to_regrole(:'app_role') \gexec
SELECT format('REVOKE ALL ON SCHEMA %I FROM %I', nspname, :'app_role') FROM pg_namespace
WHERE nspname LIKE 'tenant\_%' AND nspname <> :'schema'
  AND has_schema_privilege(:'app_role', oid, 'USAGE') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM %I', datname, :'app_role') FROM pg_database
WHERE datname LIKE 'tenant\_%' AND datname <> :'database'
  AND has_database_privilege(:'app_role', datname, 'CONNECT') \gexec
REVOKE ALL ON SCHEMA public FROM :"app_role";
SELECT pg_advisory_unlock(7311003) \gset

\connect :"database"
BEGIN;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM :"app_role";
CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"owner_role";
ALTER SCHEMA :"schema" OWNER TO :"owner_role";
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA :"schema" TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA :"schema"
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner_role" IN SCHEMA :"schema"
    GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA :"schema" TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA :"schema" TO :"app_role";
COMMIT;
