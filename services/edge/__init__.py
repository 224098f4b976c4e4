"""The HTTP edge: the OpenID Provider's endpoints and the login pages. The only public face."""
