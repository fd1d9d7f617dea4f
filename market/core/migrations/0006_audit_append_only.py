"""On PostgreSQL the audit log is append-only in the database itself: an UPDATE or DELETE of a row
raises, whoever sends it (the ORM refuses too, see AuditEntry.save and delete), like the ledger
(deals 0002)."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION core_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: rows are never changed or deleted', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    schema_editor.execute(
        "CREATE TRIGGER core_auditentry_append_only BEFORE UPDATE OR DELETE ON core_auditentry "
        "FOR EACH ROW EXECUTE FUNCTION core_append_only()"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS core_auditentry_append_only ON core_auditentry")
    schema_editor.execute("DROP FUNCTION IF EXISTS core_append_only()")


class Migration(migrations.Migration):
    dependencies = [("core", "0005_notification_idempotency")]
    operations = [migrations.RunPython(forwards, backwards)]
