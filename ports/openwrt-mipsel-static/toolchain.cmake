# A fully static (glibc) agent for musl-based OpenWrt mipsel (24kc, MT7621)
# routers without the OpenWrt SDK: it carries its own libc, so it runs on any
# mipsel Linux kernel (FPU or kernel FPU emulation). The agent only;
# `cross-build --tests-only` builds its unit tests as static binaries
# (ports/README.md: size, DNS caveats, SQLite).
set(TG_CROSS_STATIC ON)
include(${CMAKE_CURRENT_LIST_DIR}/../openwrt-mipsel/toolchain.cmake)
