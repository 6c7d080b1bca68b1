# A fully static (glibc) agent for musl-based OpenWrt aarch64 routers without
# the OpenWrt SDK: it carries its own libc, so it runs on any aarch64 Linux
# kernel. Agent only, no tests (ports/README.md: size, DNS caveats).
set(TG_CROSS_STATIC ON)
include(${CMAKE_CURRENT_LIST_DIR}/../openwrt-aarch64/toolchain.cmake)
