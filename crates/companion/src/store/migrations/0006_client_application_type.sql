-- The application_type a client registered with ('native' or 'web'); NULL
-- when it sent none or registered before this was recorded.
ALTER TABLE clients ADD COLUMN application_type TEXT;
