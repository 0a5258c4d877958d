// UTF-8 helpers of the tokenizers: repair, streaming prefix, NFC alignment, display text.
#include <gtest/gtest.h>

#include "trainer/model/unicode_text.h"

namespace anchor::unicode {
namespace {

const std::string kFFFD = "\xEF\xBF\xBD";

TEST(UnicodeText, RepairReplacesMaximalSubpartsAndMapsOffsets) {
  EXPECT_EQ(first_invalid_utf8("plain \xC3\xA9"), std::string::npos);
  EXPECT_EQ(first_invalid_utf8("a\xE6\x97"), 1u);
  EXPECT_EQ(first_invalid_utf8("\xED\xA0\x80"), 0u);  // a surrogate is ill-formed
  // E6 97 is one maximal subpart (one U+FFFD); a lone continuation byte 80 is another; FF too.
  std::vector<size_t> map;
  EXPECT_EQ(repair_utf8("a\xE6\x97" "b\x80\xFF", &map), "a" + kFFFD + "b" + kFFFD + kFFFD);
  EXPECT_EQ(map, (std::vector<size_t>{0, 1, 1, 4, 5, 8, 11}));
  // Table 3-8 of the Unicode standard: F0 80 is two subparts (80 is not a valid second byte).
  EXPECT_EQ(repair_utf8("\xF0\x80"), kFFFD + kFFFD);
  EXPECT_EQ(repair_utf8("\xF0\x9F\x98"), kFFFD);
}

TEST(UnicodeText, CompletePrefixHoldsBackAnUnfinishedCharacterOnly) {
  EXPECT_EQ(complete_utf8_prefix("ab"), 2u);
  EXPECT_EQ(complete_utf8_prefix("a\xF0\x9F\x98"), 1u);        // 3 of 4 bytes: wait
  EXPECT_EQ(complete_utf8_prefix("a\xF0\x9F\x98\x80"), 5u);    // done
  EXPECT_EQ(complete_utf8_prefix("a\x80"), 2u);                // ill-formed: final, prints U+FFFD
  EXPECT_EQ(complete_utf8_prefix("a\xE6\x41"), 3u);            // broken by an ASCII byte: final
}

TEST(UnicodeText, NfcComposesAndAlignsToTheOriginal) {
  // "e" + U+0301 -> U+00E9 (2 bytes) from 3 original bytes; the rest maps byte for byte.
  const AlignedText t = nfc("xe\xCC\x81y");
  EXPECT_EQ(t.text, "x\xC3\xA9y");
  ASSERT_EQ(t.origin.size(), 4u);
  EXPECT_EQ(t.origin[0], (std::pair<size_t, size_t>{0, 1}));
  EXPECT_EQ(t.origin[1], (std::pair<size_t, size_t>{1, 4}));
  EXPECT_EQ(t.origin[2], (std::pair<size_t, size_t>{1, 4}));
  EXPECT_EQ(t.origin[3], (std::pair<size_t, size_t>{4, 5}));
  // Already normalised text is returned as is.
  EXPECT_EQ(nfc("caf\xC3\xA9").text, "caf\xC3\xA9");
  // Hangul jamo compose into one syllable (U+AC01).
  EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8").text, "\xEA\xB0\x81");
}

TEST(UnicodeText, CharsStartingInShowWholeCharacters) {
  const std::string text = "a\xE6\x97\xA5" "b";
  EXPECT_EQ(chars_starting_in(text, 0, 2), "a\xE6\x97\xA5");
  EXPECT_EQ(chars_starting_in(text, 2, 4), "");
  EXPECT_EQ(chars_starting_in(text, 3, 5), "b");
  EXPECT_TRUE(is_white_space(0x85));
  EXPECT_TRUE(is_white_space(0x3000));
  EXPECT_FALSE(is_white_space(0x200B));
}

}  // namespace
}  // namespace anchor::unicode
