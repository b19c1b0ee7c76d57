//! Token lifetime against a real server: renewal, new logins, revocation.
