"""The isolation core: who the current tenant is, how a request finds it, where its
rows live. Imports models and extensions only; never a service or a blueprint."""
