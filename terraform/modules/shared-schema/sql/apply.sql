-- Converge one tenant's schema in the shared database. Idempotent: safe to run again.
-- psql variables: tenant_id, schema, owner_role, app_role, connection_limit, statement_timeout.
-- Environment: TENANT_APP_VERIFIER (SCRAM verifier of the app role's password).
\set ON_ERROR_STOP on
\getenv app_verifier TENANT_APP_VERIFIER
BEGIN;
-- Roles and the event trigger are shared by every tenant: one tenant at a time.
SELECT pg_advisory_xact_lock(7311002) \gset

-- Platform-wide pieces (same for every tenant) --------------------------------------
-- Private to its owner (the admin): the event trigger's function is SECURITY DEFINER,
-- so tenants' DDL reaches secure_schema() without USAGE or EXECUTE of their own.
CREATE SCHEMA IF NOT EXISTS tenantctl_admin;
REVOKE ALL ON SCHEMA tenantctl_admin FROM PUBLIC;
CREATE TABLE IF NOT EXISTS tenantctl_admin.tenant_schemas (
    schema_name name PRIMARY KEY,
    tenant_id text NOT NULL UNIQUE
);
REVOKE ALL ON tenantctl_admin.tenant_schemas FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;

-- Enable and force RLS, with a policy keyed to the tenant, on every table of a tenant
-- schema that has a tenant_id column. Runs as its owner (a superuser), so it can fix
-- tables the tenant's app role created or altered.
CREATE OR REPLACE FUNCTION tenantctl_admin.secure_schema(target name) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    tid text;
    r record;
BEGIN
    SELECT tenant_id INTO tid FROM tenantctl_admin.tenant_schemas WHERE schema_name = target;
    IF tid IS NULL THEN
        RETURN;
    END IF;
    FOR r IN
        SELECT c.oid::regclass AS rel, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE n.nspname = target AND c.relkind IN ('r', 'p')
    LOOP
        IF NOT r.rls THEN
            EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.rel);
        END IF;
        IF NOT r.forced THEN
            EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', r.rel);
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM pg_policy WHERE polrelid = r.rel AND polname = 'tenant_isolation'
        ) THEN
            EXECUTE format(
                'CREATE POLICY tenant_isolation ON %s USING (tenant_id::text = %L) '
                'WITH CHECK (tenant_id::text = %L)', r.rel, tid, tid);
        END IF;
    END LOOP;
END
$fn$;

-- Nobody but its owner may call it: a tenant could otherwise lock (ALTER) the tables of
-- any other tenant's schema. CREATE FUNCTION grants EXECUTE to PUBLIC; take it back.
REVOKE ALL ON FUNCTION tenantctl_admin.secure_schema(name) FROM PUBLIC;

-- Tables created (or altered) later get the same treatment at the end of the DDL. The
-- trigger fires as the tenant's role; SECURITY DEFINER runs it as the owner, and only on
-- the schemas of the DDL just run, so a tenant can secure its own tables and no others.
CREATE OR REPLACE FUNCTION tenantctl_admin.enforce_rls() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    s name;
BEGIN
    FOR s IN SELECT DISTINCT schema_name FROM pg_event_trigger_ddl_commands()
             WHERE schema_name LIKE 'tenant\_%'
    LOOP
        PERFORM tenantctl_admin.secure_schema(s);
    END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION tenantctl_admin.enforce_rls() FROM PUBLIC;

SELECT 'CREATE EVENT TRIGGER tenantctl_enforce_rls ON ddl_command_end '
       'WHEN TAG IN (''CREATE TABLE'', ''CREATE TABLE AS'', ''SELECT INTO'', ''ALTER TABLE'') '
       'EXECUTE FUNCTION tenantctl_admin.enforce_rls()'
WHERE NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'tenantctl_enforce_rls') \gexec
ALTER EVENT TRIGGER tenantctl_enforce_rls ENABLE ALWAYS;

-- The tenant's roles -------------------------------------------------------------------
SELECT format('CREATE ROLE %I NOLOGIN', :'owner_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner_role') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"owner_role" NOLOGIN NOINHERIT NOCREATEDB NOCREATEROLE;
ALTER ROLE :"app_role" LOGIN NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION
    CONNECTION LIMIT :connection_limit PASSWORD :'app_verifier';
ALTER ROLE :"app_role" SET statement_timeout = :'statement_timeout';
ALTER ROLE :"app_role" SET search_path = :"schema";
GRANT CONNECT ON DATABASE :"DBNAME" TO :"app_role";

-- Drift repair: the app role holds nothing beyond what this file grants it.
SELECT format('REVOKE %I FROM %I', r.rolname, :'app_role')
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
WHERE m.member = to_regrole(:'app_role') \gexec
SELECT format('REVOKE ALL ON SCHEMA %I FROM %I', nspname, :'app_role') FROM pg_namespace
WHERE nspname LIKE 'tenant\_%' AND nspname <> :'schema'
  AND has_schema_privilege(:'app_role', oid, 'USAGE') \gexec
-- Not its own dedicated database (named like its schema): during a tier change the tenant
-- still works there until the cut-over, which then retires it.
SELECT format('REVOKE ALL ON DATABASE %I FROM %I', datname, :'app_role') FROM pg_database
WHERE datname LIKE 'tenant\_%' AND datname <> current_database() AND datname <> :'schema'
  AND has_database_privilege(:'app_role', datname, 'CONNECT') \gexec
REVOKE ALL ON SCHEMA public FROM :"app_role";

-- The tenant's schema ------------------------------------------------------------------
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
INSERT INTO tenantctl_admin.tenant_schemas (schema_name, tenant_id)
VALUES (:'schema', :'tenant_id')
ON CONFLICT (schema_name) DO UPDATE SET tenant_id = EXCLUDED.tenant_id;
SELECT tenantctl_admin.secure_schema(:'schema') \gset
COMMIT;
