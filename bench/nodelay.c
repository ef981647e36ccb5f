/* LD_PRELOAD shim for bench/run.sh: set TCP_NODELAY on every socket a server
 * accepts. Garage leaves Nagle's algorithm on for accepted sockets, so small
 * responses stall ~40 ms on delayed ACKs; that would measure the kernel, not
 * the software. setsockopt fails harmlessly on non-TCP sockets.
 * When TCP_NODELAY_SHIM_MARK names a file, it is created on the first accept
 * so the harness can prove the shim was active.
 *
 *   gcc -O2 -shared -fPIC -o nodelay.so nodelay.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void set_nodelay(int fd)
{
    static int marked;
    int one = 1;
    if (fd < 0)
        return;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 && !marked) {
        const char *mark = getenv("TCP_NODELAY_SHIM_MARK");
        marked = 1;
        if (mark && *mark) {
            int m = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (m >= 0)
                close(m);
        }
    }
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real)
        real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int r = real(fd, addr, len);
    set_nodelay(r);
    return r;
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real)
        real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int r = real(fd, addr, len, flags);
    set_nodelay(r);
    return r;
}
