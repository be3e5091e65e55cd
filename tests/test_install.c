/* `make install` puts the library, headers, binary and pkg-config file under
 * PREFIX, and a program compiled with `pkg-config --cflags --libs seqlab`
 * against them builds and runs. (Skipped in the sanitizer build, whose
 * library needs the sanitizer runtime to link.) */
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_install_and_build_against_it(void)
{
    char dir[] = "/tmp/seqlab-install-XXXXXX", cmd[1024];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(cmd, sizeof cmd, "make -s install PREFIX=%s >%s/log 2>&1", dir, dir);
    CHECK(system(cmd) == 0, "make install");
    const char *files[] = {"bin/seqlab", "lib/libseqlab.a", "include/seqlab.h",
                           "include/seqlab/model/model.h", "lib/pkgconfig/seqlab.pc"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(cmd, sizeof cmd, "test -f %s/%s", dir, files[i]);
        CHECK(system(cmd) == 0, "%s installed", files[i]);
    }
    snprintf(cmd, sizeof cmd,
             "PKG_CONFIG_PATH=%s/lib/pkgconfig cc -std=c11 examples/forward.c -o %s/forward "
             "$(PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs seqlab) >>%s/log 2>&1 "
             "&& %s/forward > %s/out && grep -q 'loss 3.9' %s/out",
             dir, dir, dir, dir, dir, dir, dir);
    CHECK(system(cmd) == 0, "example builds and runs against the install");
    snprintf(cmd, sizeof cmd, "%s/bin/seqlab --version >/dev/null", dir);
    CHECK(system(cmd) == 0, "installed binary runs");
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
