/* The pod's pause process: holds the sandbox's namespaces open and does nothing else.
 *
 * It exits 0 on SIGTERM or SIGINT and, when it is PID 1 of a shared PID namespace, reaps every
 * orphan that is reparented to it. It uses no stdio so that, linked statically, its resident
 * memory stays at a few pages: one pause runs per pod.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signal_number) {
    (void)signal_number;
    _exit(0);
}

static void reap(int signal_number) {
    (void)signal_number;
    while (waitpid(-1, 0, WNOHANG) > 0) {
    }
}

static void on_signal(int signal_number, void (*handler)(int)) {
    struct sigaction action = {0};
    action.sa_handler = handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(signal_number, &action, 0);
}

int main(void) {
    on_signal(SIGTERM, stop);
    on_signal(SIGINT, stop);
    on_signal(SIGCHLD, reap);
    for (;;) {
        pause();
    }
}
