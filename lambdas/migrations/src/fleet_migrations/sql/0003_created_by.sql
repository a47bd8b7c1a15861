-- 0003_created_by: who created each project and device, and the serial limit of the API.
--
-- created_by is the `sub` claim of the verified caller (API Gateway's JWT authorizer) that
-- created the row: NOT NULL, 1..256 characters, for every row written from now on.
--
-- Rows that exist before this migration never recorded their creator. They get the fixed
-- value 'unknown' rather than NULL:
--   * the column can be NOT NULL at once, so the database itself refuses a new row without a
--     creator (a nullable column would accept one silently, from any writer);
--   * every API response carries a string, so clients need no null case;
--   * 'unknown' is not a `sub` Cognito issues (a UUID for users, the 26-character app client
--     id for client-credentials tokens), so it does not pass for a real caller; an external
--     issuer's subs are opaque ids too. docs/api.md tells clients what it means.
-- The value comes from a DEFAULT that is dropped right after: adding a column with a constant
-- default only writes the catalog (no table rewrite), and without the default an INSERT that
-- leaves created_by out fails (SQLSTATE 23502) instead of writing 'unknown' again.
--
-- device.serial: 1..100 characters, as the API has always accepted (0002 allowed 128). The
-- new CHECK binds every row written from now on; it is validated against the existing rows
-- only when all of them comply (a longer serial can only have been written around the API,
-- and it must not make this migration, hence the deploy, fail). Until then the constraint is
-- marked NOT VALID: enforced for inserts and updates, not assumed for old rows.

-- Changing the two hot tables locks them: fail fast rather than queue the API behind us.
SET LOCAL lock_timeout = '5s';

ALTER TABLE project ADD COLUMN created_by text NOT NULL DEFAULT 'unknown';
ALTER TABLE project ALTER COLUMN created_by DROP DEFAULT;
ALTER TABLE project ADD CONSTRAINT project_created_by_check
    CHECK (char_length(created_by) BETWEEN 1 AND 256);

ALTER TABLE device ADD COLUMN created_by text NOT NULL DEFAULT 'unknown';
ALTER TABLE device ALTER COLUMN created_by DROP DEFAULT;
ALTER TABLE device ADD CONSTRAINT device_created_by_check
    CHECK (char_length(created_by) BETWEEN 1 AND 256);

ALTER TABLE device DROP CONSTRAINT device_serial_check;
ALTER TABLE device ADD CONSTRAINT device_serial_check
    CHECK (serial IS NULL OR (char_length(serial) BETWEEN 1 AND 100 AND serial = btrim(serial)))
    NOT VALID;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM device WHERE char_length(serial) > 100) THEN
        ALTER TABLE device VALIDATE CONSTRAINT device_serial_check;
    END IF;
END
$$;
