"""Operations over a data directory: verify, reindex (and later backup, restore, archive)."""
