"""Who may do what: principals with roles and hashed keys (`keys`, `keysfile`, `ring`), the checks every
endpoint and socket makes (`guard`), and the `callwatch keys` command (`cli`). docs/security.md is the
user's guide."""
