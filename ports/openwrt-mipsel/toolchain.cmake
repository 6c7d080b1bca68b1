# OpenWrt-class mipsel (24kc target: MT7621 routers), built against Debian's
# glibc mipsel libraries (baseline MIPS32r2, o32, FPXX hard-float: see
# ports/README.md about FPU-less SoCs). OpenWrt itself is musl-based: this
# dynamic build is for compiling and unit-testing the code for that CPU; the
# OpenWrt binary is the SDK package or the static build
# (ports/openwrt-mipsel-static).
set(TG_CROSS_TRIPLET mipsel-linux-gnu)
set(TG_CROSS_PROCESSOR mipsel)
set(TG_CROSS_QEMU qemu-mipsel)
set(TG_CROSS_FLAGS "-march=24kc")
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/debian-cross.cmake)
