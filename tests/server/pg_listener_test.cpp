// PgListener's payload parser: what the store's notifications say ("j first last", "d id", "c id"),
// and that anything else is ignored rather than misread.
#include <gtest/gtest.h>

#include "pg_listener.hpp"

namespace confab::server {
namespace {

TEST(PgListenerParse, JournalRange) {
    PgListener::Parsed p;
    ASSERT_TRUE(PgListener::parse("j 17 4096", p));
    EXPECT_EQ(p.kind, 'j');
    EXPECT_EQ(p.first, 17);
    EXPECT_EQ(p.last, 4096);
    ASSERT_TRUE(PgListener::parse("j 5 5", p));
    EXPECT_EQ(p.first, 5);
    EXPECT_EQ(p.last, 5);
}

TEST(PgListenerParse, DoneAndCancel) {
    PgListener::Parsed p;
    ASSERT_TRUE(PgListener::parse("d ex_0123456789abcdef0123456789abcdef", p));
    EXPECT_EQ(p.kind, 'd');
    EXPECT_EQ(p.id, "ex_0123456789abcdef0123456789abcdef");
    ASSERT_TRUE(PgListener::parse("c ex_1", p));
    EXPECT_EQ(p.kind, 'c');
    EXPECT_EQ(p.id, "ex_1");
}

TEST(PgListenerParse, RejectsWhatIsNotOurs) {
    PgListener::Parsed p;
    for (const char* bad : {"", "j", "j ", "j 1", "j 1 ", "j a b", "j 2 1", "j -1 3", "j 1 2 3", "d ", "d a b",
                            "x 1", "d", "jj 1 2", "c  ex"}) {
        EXPECT_FALSE(PgListener::parse(bad, p)) << "'" << bad << "'";
    }
    EXPECT_FALSE(PgListener::parse("d " + std::string(200, 'a'), p));
}

}  // namespace
}  // namespace confab::server
