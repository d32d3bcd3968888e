# Authorisation by the client's SO_PEERCRED credentials (auth.sh): runs
# ulpctl as an unprivileged user it creates (ulp-test-user), so it needs
# root; exit 77 means skipped (not root, or Yama ptrace_scope >= 2).
ulp_integration_test(auth)
set_tests_properties(integration.auth PROPERTIES SKIP_RETURN_CODE 77)
