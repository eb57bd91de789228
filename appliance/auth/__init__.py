"""Who may use the registry: htpasswd users now, tokens later."""
