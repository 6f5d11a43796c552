/*
 * The hello-world seed image's only file.
 *
 * Built with `gcc -static -Os -nostdlib` and stripped: no libc, just the two
 * system calls it needs, so the image stays a few kilobytes like Docker's own
 * hello-world instead of the ~700 KB a static glibc binary weighs.
 */
#include <stddef.h>

static const char message[] =
    "\n"
    "Hello from Berth!\n"
    "This message shows that your installation appears to be working correctly.\n"
    "\n"
    "To generate this message, Berth took the following steps:\n"
    " 1. The berth client contacted the berthd daemon (through the Docker Engine API).\n"
    " 2. berthd found the \"hello-world\" image in its local image store\n"
    "    (Berth seeds it offline, built from Debian packages; no registry needed).\n"
    " 3. berthd created a new container from that image, which runs the\n"
    "    executable that produced the output you are currently reading.\n"
    " 4. berthd streamed that output to the berth client, which sent it\n"
    "    to your terminal.\n"
    "\n"
    "To try something more ambitious, you can run a shell in a container with:\n"
    " $ berth run -it --rm busybox sh\n"
    "\n"
    "Or a Debian userland, with apt:\n"
    " $ berth run -it --rm debian:bookworm-slim bash\n"
    "\n"
    "The same commands work with the docker CLI pointed at Berth (DOCKER_HOST).\n"
    "For more, see README.md and docs/ARCHITECTURE.md in the Berth repository.\n"
    "\n";

#if defined(__x86_64__)
static long sys_call3(long number, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(number), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}
#define SYS_WRITE 1
#define SYS_EXIT 60
#elif defined(__aarch64__)
static long sys_call3(long number, long a, long b, long c)
{
    register long x8 __asm__("x8") = number;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
#define SYS_WRITE 64
#define SYS_EXIT 93
#else
#error "hello.c: add the write/exit system calls for this architecture"
#endif

/* The kernel enters _start with a 16-byte aligned stack, not the call-site
 * alignment a C function expects; realign before any spill. */
#if defined(__x86_64__)
__attribute__((force_align_arg_pointer))
#endif
__attribute__((noreturn)) void _start(void)
{
    const char *p = message;
    size_t left = sizeof(message) - 1;
    int status = 0;

    /* A pipe may take fewer bytes than asked: keep writing the rest. */
    while (left > 0) {
        long n = sys_call3(SYS_WRITE, 1, (long)p, (long)left);
        if (n == -4 /* EINTR */)
            continue;
        if (n <= 0) {
            status = 1;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    for (;;)
        sys_call3(SYS_EXIT, status, 0, 0);
}
