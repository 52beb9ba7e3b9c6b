"""KIE's API: the error tree, the client with its retry rules, typed values, uploads, the polling schedule."""
