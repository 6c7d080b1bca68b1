# Raspberry Pi OS 32-bit userland with Debian armhf libraries (glibc).
# Debian armhf is ARMv7-A + VFPv3-D16, Thumb-2, hard-float: runs on Pi 2, 3,
# 4, 5, Zero 2 W; NOT on ARMv6 boards (Pi 1, Zero, Zero W): see ports/README.md.
set(TG_CROSS_TRIPLET arm-linux-gnueabihf)
set(TG_CROSS_PROCESSOR armv7l)
set(TG_CROSS_QEMU qemu-arm)
set(TG_CROSS_FLAGS "")
include(${CMAKE_CURRENT_LIST_DIR}/../cmake/debian-cross.cmake)
