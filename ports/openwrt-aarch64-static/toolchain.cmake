# A fully static (glibc) agent for musl-based OpenWrt aarch64 routers without
# the OpenWrt SDK: it carries its own libc, so it runs on any aarch64 Linux
# kernel. The agent only; `cross-build --tests-only` builds its unit tests as
# static binaries (ports/README.md: size, DNS caveats, SQLite).
set(TG_CROSS_STATIC ON)
include(${CMAKE_CURRENT_LIST_DIR}/../openwrt-aarch64/toolchain.cmake)
