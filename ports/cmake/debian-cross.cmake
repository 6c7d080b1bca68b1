# Shared part of the ports' toolchain files: a Debian 12 cross compiler
# (crossbuild-essential-<arch>) and the multiarch libraries in /usr/lib/<triplet>
# installed by scripts/setup-cross. Each ports/<target>/toolchain.cmake sets
# TG_CROSS_TRIPLET, TG_CROSS_PROCESSOR, TG_CROSS_QEMU and optionally
# TG_CROSS_FLAGS / TG_CROSS_STATIC, then includes this file.

if(NOT TG_CROSS_TRIPLET OR NOT TG_CROSS_PROCESSOR)
  message(FATAL_ERROR "debian-cross.cmake: set TG_CROSS_TRIPLET and TG_CROSS_PROCESSOR first")
endif()

# The device ports leave out .eh_frame unwind tables (cmake/Toolchain.cmake,
# TG_UNWIND_TABLES): 7 % of the agent's size. -DTG_UNWIND_TABLES=ON keeps them.
set(TG_UNWIND_TABLES OFF CACHE BOOL "Keep .eh_frame unwind tables")
# Link-time optimisation of the two programs (cmake/Toolchain.cmake, TG_LTO).
set(TG_LTO ON CACHE BOOL "Link the two programs with link-time optimisation")

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${TG_CROSS_PROCESSOR})
set(CMAKE_C_COMPILER   ${TG_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${TG_CROSS_TRIPLET}-g++)
set(CMAKE_AR           ${TG_CROSS_TRIPLET}-gcc-ar CACHE FILEPATH "")
set(CMAKE_RANLIB       ${TG_CROSS_TRIPLET}-gcc-ranlib CACHE FILEPATH "")
set(CMAKE_STRIP        ${TG_CROSS_TRIPLET}-strip CACHE FILEPATH "")
set(CMAKE_LIBRARY_ARCHITECTURE ${TG_CROSS_TRIPLET})

# -dev packages apt could not install on this host are unpacked from the same
# Debian .deb into this overlay by scripts/setup-cross.
set(TG_CROSS_OVERLAY "/opt/tokengo-cross/${TG_CROSS_TRIPLET}")
if(DEFINED ENV{TG_CROSS_OVERLAY})
  set(TG_CROSS_OVERLAY "$ENV{TG_CROSS_OVERLAY}/${TG_CROSS_TRIPLET}")
endif()

# Libraries and headers: the overlay, the cross compiler's own sysroot
# (/usr/<triplet>: libc, libstdc++) and the multiarch tree (/usr/lib/<triplet>,
# arch-independent headers in /usr/include). Programs (python3, node) come
# from the host.
set(CMAKE_FIND_ROOT_PATH ${TG_CROSS_OVERLAY} /usr/${TG_CROSS_TRIPLET} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config sees only the target's .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR}
    "${TG_CROSS_OVERLAY}/usr/lib/${TG_CROSS_TRIPLET}/pkgconfig:/usr/lib/${TG_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
unset(ENV{PKG_CONFIG_SYSROOT_DIR})

set(CMAKE_C_FLAGS_INIT   "${TG_CROSS_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${TG_CROSS_FLAGS}")

if(TG_CROSS_STATIC)
  # A fully static executable: it carries its own libc, so it runs on a
  # musl-based system too (see ports/README.md for the DNS caveat). Static
  # archives Debian names differently or lacks (libuv.a, libcjson.a, libz.a)
  # come from <overlay>/static, searched first (scripts/setup-cross).
  list(PREPEND CMAKE_FIND_ROOT_PATH ${TG_CROSS_OVERLAY}/static)
  set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
  set(CMAKE_PROJECT_INCLUDE ${CMAKE_CURRENT_LIST_DIR}/static-libs.cmake)
endif()

# Test binaries run under qemu-user, at build time too (gtest_discover_tests).
# -L makes the guest's /lib the cross compiler's runtime (/usr/<triplet>/lib),
# and LD_LIBRARY_PATH=/lib makes the loader take libc and libstdc++ from there,
# so ld.so and libc.so.6 come from the same package; the other libraries are
# found in /usr/lib/<triplet> (multiarch).
if(TG_CROSS_QEMU)
  find_program(TG_CROSS_QEMU_PATH ${TG_CROSS_QEMU} PATHS /usr/bin NO_CMAKE_FIND_ROOT_PATH)
  if(NOT TG_CROSS_QEMU_PATH)
    message(FATAL_ERROR "${TG_CROSS_QEMU} not found: run scripts/setup-cross (installs qemu-user)")
  endif()
  set(CMAKE_CROSSCOMPILING_EMULATOR
      ${TG_CROSS_QEMU_PATH} -L /usr/${TG_CROSS_TRIPLET} -E LD_LIBRARY_PATH=/lib)
endif()
