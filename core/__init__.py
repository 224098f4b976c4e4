"""Small pieces every domain shares: errors, callers, settings, logging. No gRPC, no HTTP."""
