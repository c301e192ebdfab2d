/* tests/await_line.c: an await on line AWAIT_LINE (tests/await_lines).
 * Lines 1 to 6 of a file carry the special resume points of the portable
 * build: an await there must not compile. */
#include <ptrio.h>

struct m { ptrio_frame fr; };

static int f(ptrio_frame *fr)
{
    PTRIO_BEGIN_AS(struct m, m);
#line AWAIT_LINE
    PTRIO_AWAIT(m, ptrio_checkpoint(m));
#line 100
    PTRIO_END(m);
}

int main(void)
{
    static struct m x;
    return ptrio_run(f, &x) != 0;
}
