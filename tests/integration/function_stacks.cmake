# Several patches on one function, and atomic replace, under 8 spinning threads.
ulp_integration_test(function_stacks TIMEOUT 240)
