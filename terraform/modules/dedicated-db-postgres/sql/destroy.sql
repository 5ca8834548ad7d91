-- Drop one tenant's dedicated database and roles. Safe when already gone.
-- psql variables: database, owner_role, app_role, deletion_protection (true/false).
\set ON_ERROR_STOP on
\if :deletion_protection
SELECT format('DO $d$BEGIN RAISE EXCEPTION %L; END$d$',
              'deletion protection is on for database ' || :'database'
              || ': apply with deletion_protection = false before destroying') \gexec
\endif
DROP DATABASE IF EXISTS :"database" WITH (FORCE);
SELECT format('DROP OWNED BY %I CASCADE', rolname) FROM pg_roles
WHERE rolname IN (:'app_role', :'owner_role') \gexec
DROP ROLE IF EXISTS :"app_role";
DROP ROLE IF EXISTS :"owner_role";
