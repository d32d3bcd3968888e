# The kernel's test-state.sh and test-shadow-vars.sh modules as patches
# (integration.klp_state, integration.klp_shadow_vars), for
# tests/targets/klp_target.c.  patch_klp_state3.c is patch_klp_state2.c
# under another name, as test_klp_state3.c is test_klp_state2.c; all three
# are patch_klp_state.h.
foreach(p patch_klp_state patch_klp_state2 patch_klp_state3 patch_klp_shadow_vars)
  ulp_add_patch(${p} SOURCES ${p}.c)
endforeach()
