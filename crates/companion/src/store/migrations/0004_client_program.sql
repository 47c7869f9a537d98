-- The program that registered each client, as the OS told at registration
-- (JSON: pid, executable, known app). NULL when the OS gave no answer or the
-- client registered before this was recorded.
ALTER TABLE clients ADD COLUMN registered_by TEXT;
