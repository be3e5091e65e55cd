/* `make install` puts the binary, the library, the pkg-config file and one
 * header, include/seqlab.h, under PREFIX; nothing internal (src/'s headers,
 * small_gemm.h's transpose or pack) is installed. A program compiled in a
 * directory of its own with `pkg-config --cflags --libs seqlab`, so that it
 * can see the installed tree only, builds against that one header and
 * scores text from a checkpoint the installed binary trained. (Skipped in
 * the sanitizer build, whose library needs the sanitizer runtime to link.) */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static char dir[] = "/tmp/seqlab-install-XXXXXX";

/* Runs the printf-formatted shell command, output appended to DIR/log. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048], full[2300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "(%s) >>%s/log 2>&1", cmd, dir);
    return system(full);
}

static void test_install_and_build_against_it(void)
{
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    CHECK(sh("make -s install PREFIX=%s", dir) == 0, "make install");
    const char *files[] = {"bin/seqlab", "lib/libseqlab.a", "include/seqlab.h",
                           "lib/pkgconfig/seqlab.pc"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        CHECK(sh("test -f %s/%s", dir, files[i]) == 0, "%s installed", files[i]);
    CHECK(sh("test \"$(find %s/include ! -type d)\" = %s/include/seqlab.h", dir, dir) == 0,
          "include/ holds seqlab.h and nothing else");
    CHECK(sh("! grep '#include' %s/include/seqlab.h | grep -v -e '<stddef.h>' -e '<stdint.h>'",
             dir) == 0,
          "seqlab.h includes nothing but the C library");
    CHECK(sh("! grep -n -e transpose -e pack -e sl_ %s/include/seqlab.h", dir) == 0,
          "no internal names in seqlab.h");
    char pc[600];
    snprintf(pc, sizeof pc, "PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs seqlab",
             dir);
    CHECK(sh("mkdir %s/prog && cp examples/score.c %s/prog/", dir, dir) == 0, "copy the example");
    CHECK(sh("cd %s/prog && cc -std=c11 -Wall -Werror score.c -o score $(%s)", dir, pc) == 0,
          "the example builds against the install alone");
    CHECK(sh("for i in $(seq 60); do echo 'the cat sat on the mat.'; done > %s/text.txt && "
             "%s/bin/seqlab train --data=%s/text.txt --d_model=16 --n_heads=2 --n_layers=1 "
             "--seq_len=16 --max_seq_len=32 --batch_size=2 --steps=2 --eval_batches=1 "
             "--out_dir=%s/run",
             dir, dir, dir, dir) == 0,
          "the installed binary trains");
    CHECK(sh("%s/prog/score %s/run/checkpoint.safetensors 'the cat' > %s/out && "
             "grep -q '^vocab 12 total -' %s/out",
             dir, dir, dir, dir) == 0,
          "the example scores text");
    CHECK(sh("%s/bin/seqlab --version", dir) == 0, "installed binary runs");
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cat %s/log >&2; rm -rf %s", dir, dir);
    if (system(cmd) != 0) check_failures++;
}

int main(void)
{
#if defined(__SANITIZE_ADDRESS__)
    printf("skipped: sanitizer build\n");
    return 0;
#endif
    RUN(test_install_and_build_against_it);
    return TEST_SUMMARY();
}
