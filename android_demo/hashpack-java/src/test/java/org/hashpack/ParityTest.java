package org.hashpack;

import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * Reader parity with Python: tests/java_fixtures.py damages the fixtures at random (re-signed edits
 * of the metadata and the tensor table) and records whether hashpack.runtime accepts each file and,
 * if so, its numpy outputs. The Java reader must give the same verdict for every file and, for
 * accepted ones, the same outputs.
 */
public class ParityTest {
    @Test
    public void sameVerdictsAndOutputsAsThePythonReader() {
        File fixtures = TestSupport.fixtures();
        Map<String, Object> manifest = TestSupport.readJson(new File(fixtures, "manifest.json"));
        List<?> cases = (List<?>) TestSupport.readJson(new File(fixtures, (String) manifest.get("parity"))).get("cases");
        assertTrue(cases.size() >= 100);
        List<String> problems = new ArrayList<>();
        int accepted = 0;
        int compared = 0;
        for (Object c : cases) {
            Map<?, ?> spec = (Map<?, ?>) c;
            String file = (String) spec.get("file");
            boolean pythonAccepts = (Boolean) spec.get("accepted");
            HpkFile parsed = null;
            String javaMessage = null;
            try {
                parsed = HpkReader.parse(TestSupport.readBytes(new File(fixtures, file)), file);
            } catch (HpkFormatException e) {
                javaMessage = e.getMessage();
            }
            if (pythonAccepts != (parsed != null)) {
                problems.add(file + " [" + spec.get("edit") + "]: python "
                        + (pythonAccepts ? "accepts" : "rejects (" + spec.get("message") + ")") + ", java "
                        + (parsed != null ? "accepts" : "rejects (" + javaMessage + ")"));
                continue;
            }
            if (parsed == null) {
                Object mustMention = spec.get("java_must_mention");
                if (mustMention != null && !javaMessage.contains((String) mustMention)) {
                    problems.add(file + " [" + spec.get("edit") + "]: java's message does not mention '"
                            + mustMention + "': " + javaMessage);
                }
                continue;
            }
            accepted++;
            if (spec.get("run_error") != null) {
                problems.add(file + ": python accepted it but could not run it: " + spec.get("run_error"));
                continue;
            }
            if (spec.get("output") == null) {
                continue; // too large to run in a test
            }
            float[] input = TestSupport.readFloats(new File(fixtures, (String) spec.get("input")));
            float[] expected = TestSupport.readFloats(new File(fixtures, (String) spec.get("output")));
            float[] actual = new Model(parsed).run(input, 2);
            compared++;
            for (int i = 0; i < expected.length; i++) {
                boolean same = Float.isNaN(expected[i]) ? Float.isNaN(actual[i])
                        : Math.abs(expected[i] - actual[i]) <= 1e-5 * Math.max(1, Math.abs(expected[i]));
                if (!same) {
                    problems.add(file + " [" + spec.get("edit") + "]: output " + i + " java " + actual[i] + ", numpy "
                            + expected[i]);
                    break;
                }
            }
        }
        if (!problems.isEmpty()) {
            StringBuilder message = new StringBuilder(problems.size() + " of " + cases.size()
                    + " damaged files differ between the readers:");
            for (String p : problems.subList(0, Math.min(25, problems.size()))) {
                message.append("\n  ").append(p);
            }
            throw new AssertionError(message.toString());
        }
        assertTrue("some damaged files must still be valid", accepted > 0 && compared > 0);
    }
}
