"""Release safety: release records, promotion, canaries, rollback and pins."""
