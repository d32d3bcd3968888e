# patch_klp_hot.c again, for integration.function_stacks: two more versions
# of klp_hot_func, one calling the original through old_func, and an
# atomic replace patching klp_main_func only.
ulp_add_patch(patch_klp_hot2 SOURCES patch_klp_hot.c)
target_compile_definitions(patch_klp_hot2 PRIVATE KLP_HOT_NAME="klp_hot2" KLP_HOT_ADD=2000)
ulp_add_patch(patch_klp_hot_old SOURCES patch_klp_hot.c)
target_compile_definitions(patch_klp_hot_old PRIVATE KLP_HOT_NAME="klp_hot_old" KLP_HOT_ADD=5000
  KLP_HOT_CALL_OLD)
ulp_add_patch(patch_klp_hot_replace SOURCES patch_klp_hot.c)
target_compile_definitions(patch_klp_hot_replace PRIVATE KLP_HOT_NAME="klp_hot_replace"
  KLP_HOT_REPLACE)
ulp_add_patch(patch_klp_hot_replace_pos1 SOURCES patch_klp_hot.c)
target_compile_definitions(patch_klp_hot_replace_pos1 PRIVATE
  KLP_HOT_NAME="klp_hot_replace_pos1" KLP_HOT_REPLACE KLP_HOT_SYMPOS=1)
ulp_add_patch(patch_klp_hot_twice SOURCES patch_klp_hot.c)
target_compile_definitions(patch_klp_hot_twice PRIVATE
  KLP_HOT_NAME="klp_hot_twice" KLP_HOT_REPLACE KLP_HOT_TWICE)
