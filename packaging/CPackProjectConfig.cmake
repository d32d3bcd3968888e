# Read by cpack for each generator (CPACK_PROJECT_CONFIG_FILE).  A Debian
# package must be built from a tree configured for /usr: ulpd has the path
# of libulp-rt.so built in and ulpd.service the path of ulpd.  Nor may its
# binaries be sanitized.
if(CPACK_GENERATOR STREQUAL "DEB")
  if(NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
    message(FATAL_ERROR "ulp: a Debian package needs a build tree configured with "
      "-DCMAKE_INSTALL_PREFIX=/usr (this one installs to '${CPACK_PACKAGING_INSTALL_PREFIX}')")
  endif()
  if(CPACK_ULP_SANITIZE)
    message(FATAL_ERROR "ulp: a Debian package needs a build tree configured with -DULP_SANITIZE=OFF")
  endif()
endif()
