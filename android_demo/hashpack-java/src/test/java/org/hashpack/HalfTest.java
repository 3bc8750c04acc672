package org.hashpack;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import org.junit.Test;

/** float16 to float32 against numpy for all 65536 bit patterns. */
public class HalfTest {
    @Test
    public void everyHalfConvertsLikeNumpy() {
        File manifest = new File(TestSupport.fixtures(), "manifest.json");
        String table = (String) TestSupport.readJson(manifest).get("f16_table");
        int[] expected = TestSupport.readInts(new File(TestSupport.fixtures(), table));
        assertEquals(65536, expected.length);
        int nans = 0;
        for (int h = 0; h < 65536; h++) {
            float ours = Half.toFloat((short) h);
            float theirs = Float.intBitsToFloat(expected[h]);
            if (Float.isNaN(theirs)) {
                // NaN payload handling may differ between conversion paths; NaN-ness must not
                assertTrue("half 0x" + Integer.toHexString(h), Float.isNaN(ours));
                assertEquals(false, Half.isFinite((short) h));
                nans++;
            } else {
                assertEquals("half 0x" + Integer.toHexString(h), expected[h], Float.floatToRawIntBits(ours));
                assertEquals(!Float.isInfinite(theirs), Half.isFinite((short) h));
            }
        }
        assertEquals(2 * 1023, nans);
    }
}
