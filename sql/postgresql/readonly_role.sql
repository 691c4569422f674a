-- A login role for BI tools that can read the output schema and nothing else.
--
--   psql "$ADMIN_URL" -v schema=cx -v role=cx_reader -v password='a-strong-password' \
--        -v owner=cx_pipeline -f sql/postgresql/readonly_role.sql
--
-- schema:   the schema the pipeline writes to (CX_WAREHOUSE_SCHEMA)
-- owner:    the role the pipeline connects as (it creates the tables, so future tables
--           are granted through its default privileges)
-- Run it as a superuser or as the database owner. Re-running it is harmless.
\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I LOGIN', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
ALTER ROLE :"role" SET default_transaction_read_only = on;

CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"owner";

-- Nothing in public or any other schema; may connect, may read the output schema.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM :"role";
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'role') \gexec
GRANT USAGE ON SCHEMA :"schema" TO :"role";
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema"
    GRANT SELECT ON TABLES TO :"role";
