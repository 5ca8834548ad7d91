-- Drop one tenant's dedicated database and roles. Safe when already gone.
-- psql variables: database, owner_role, app_role, deletion_protection (true/false).
\set ON_ERROR_STOP on
\if :deletion_protection
SELECT format('DO $d$BEGIN RAISE EXCEPTION %L; END$d$',
              'deletion protection is on for database ' || :'database'
              || ': apply with deletion_protection = false before destroying') \gexec
\endif
DROP DATABASE IF EXISTS :"database" WITH (FORCE);
-- Roles are server-wide: after a tier change they also serve the tenant's schema in the
-- shared database on this server (anything still depending on them). Then they stay.
SELECT EXISTS (
    SELECT 1 FROM pg_shdepend d
    WHERE d.refclassid = 'pg_authid'::regclass
      AND d.refobjid IN (SELECT oid FROM pg_roles WHERE rolname IN (:'app_role', :'owner_role'))
) AS used_elsewhere \gset
\if :used_elsewhere
\else
DROP ROLE IF EXISTS :"app_role";
DROP ROLE IF EXISTS :"owner_role";
\endif
