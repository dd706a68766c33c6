from django.db import migrations

# The timeline is evidence: make PostgreSQL refuse to rewrite it, whatever the code (or an admin) does.
FORWARD = """
CREATE FUNCTION payments_paymentevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'payments_paymentevent is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER payments_paymentevent_append_only
    BEFORE UPDATE OR DELETE ON payments_paymentevent
    FOR EACH ROW EXECUTE FUNCTION payments_paymentevent_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS payments_paymentevent_append_only ON payments_paymentevent;
DROP FUNCTION IF EXISTS payments_paymentevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
