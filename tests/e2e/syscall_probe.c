/* Tries one system call a container should not be able to make and says what happened.
 * Built statically by tests/e2e/test_security_e2e.py and mounted into test pods.
 * Usage: syscall_probe keyctl|bpf|kexec_load|ptrace PID; exits 0 when the call worked, 1 when not. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long result;
    char attr[128];
    if (argc < 2) {
        fprintf(stderr, "usage: %s keyctl|bpf|kexec_load|ptrace PID\n", argv[0]);
        return 2;
    }
    memset(attr, 0, sizeof attr);
    if (strcmp(argv[1], "keyctl") == 0) {
        result = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session keyring */, 1 /* create */);
    } else if (strcmp(argv[1], "bpf") == 0) {
        result = syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr);
    } else if (strcmp(argv[1], "kexec_load") == 0) {
        result = syscall(SYS_kexec_load, 0, 0, NULL, 0);
    } else if (strcmp(argv[1], "ptrace") == 0 && argc > 2) {
        result = ptrace(PTRACE_ATTACH, atoi(argv[2]), NULL, NULL);
    } else {
        fprintf(stderr, "unknown probe %s\n", argv[1]);
        return 2;
    }
    if (result < 0) {
        printf("%s: errno %d (%s)\n", argv[1], errno, strerror(errno));
        return 1;
    }
    printf("%s: ok\n", argv[1]);
    return 0;
}
