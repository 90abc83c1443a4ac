"""Operations on whole tenants: provisioning and status changes."""
