/* runrss.c - run a command and write its peak RSS (KiB) and wall time to a file.
 *
 * Usage: runrss OUTFILE CMD [ARG...]     OUTFILE gets "maxrss_kb seconds\n"; exit code = CMD's.
 * Why not wait4() from Python directly: ru_maxrss survives exec, so a child forked from a big
 * Python process would report the parent's RSS.  This launcher is tiny, so what it reports is
 * the command's own peak (the largest process of its tree, as getrusage(RUSAGE_CHILDREN) does).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUTFILE CMD [ARG...]\n", argv[0]);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("runrss: fork");
        return 127;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror("runrss: exec");
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("runrss: wait4");
        return 127;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror("runrss: output file");
        return 127;
    }
    /* CPU seconds (user + system, the child and the children it waited for): on a shared,
     * loaded machine the ratio of CPU times is steadier than the ratio of wall times */
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    fprintf(f, "%ld %.6f %.6f\n", ru.ru_maxrss, s, cpu);
    fclose(f);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
