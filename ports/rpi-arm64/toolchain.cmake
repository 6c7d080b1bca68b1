# Raspberry Pi OS 64-bit (Debian arm64, glibc): Pi 3, 4, 5, Zero 2 W, CM3/4/5.
# Debian's arm64 baseline (ARMv8-A) is kept, so the binary also runs on any
# other arm64 Debian/Ubuntu system.
set(TG_CROSS_TRIPLET aarch64-linux-gnu)
set(TG_CROSS_PROCESSOR aarch64)
set(TG_CROSS_QEMU qemu-aarch64)
set(TG_CROSS_FLAGS "")
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/debian-cross.cmake)
