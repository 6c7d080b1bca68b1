# OpenWrt-class aarch64 (cortex-a53: MT7622/MT7981/MT7986, IPQ807x, RPi 3/4
# boards, ...), built against Debian's glibc arm64 libraries. OpenWrt itself is
# musl-based: this dynamic build is for compiling and unit-testing the code
# for that CPU; the OpenWrt binary is the SDK package or the static build
# (ports/openwrt-aarch64-static).
set(TG_CROSS_TRIPLET aarch64-linux-gnu)
set(TG_CROSS_PROCESSOR aarch64)
set(TG_CROSS_QEMU qemu-aarch64)
set(TG_CROSS_FLAGS "-mcpu=cortex-a53")
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/debian-cross.cmake)
