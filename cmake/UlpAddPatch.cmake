# ulp_add_patch(NAME SOURCES src.c ... [OUTPUT_NAME name])
#
# Builds a live patch: a shared object (no "lib" prefix, NAME.so) compiled
# against <ulp/patch.h>.  ulp_log() and friends stay undefined here; they
# resolve against libulp-rt.so, which ulp loads into the target first.
function(ulp_add_patch name)
  cmake_parse_arguments(ARG "" "OUTPUT_NAME" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "ulp_add_patch(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES PREFIX "" POSITION_INDEPENDENT_CODE ON
    C_VISIBILITY_PRESET hidden)
  if(ARG_OUTPUT_NAME)
    set_target_properties(${name} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  if(TARGET ulp::headers)
    target_link_libraries(${name} PRIVATE ulp::headers)
  elseif(TARGET ulp_headers)
    target_link_libraries(${name} PRIVATE ulp_headers)
  endif()
  # Patches are loaded into arbitrary processes: never sanitized, and every
  # symbol they need from ulp comes from the already-loaded runtime.
  target_link_options(${name} PRIVATE -Wl,--build-id)
endfunction()
