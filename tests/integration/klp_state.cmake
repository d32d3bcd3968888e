# Ports of the kernel's test-state.sh (the four cases: system states taken
# over, handed on and refused by cumulative patches) and test-shadow-vars.sh
# (the shadow variable API); patches in tests/patches/klp_state.cmake.
ulp_integration_test(klp_state)
ulp_integration_test(klp_shadow_vars)
