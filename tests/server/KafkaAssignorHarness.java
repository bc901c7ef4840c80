import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.coordinator.group.api.assignor.ConsumerGroupPartitionAssignor;
import org.apache.kafka.coordinator.group.api.assignor.GroupAssignment;
import org.apache.kafka.coordinator.group.api.assignor.GroupSpec;
import org.apache.kafka.coordinator.group.api.assignor.MemberAssignment;
import org.apache.kafka.coordinator.group.api.assignor.SubscribedTopicDescriber;
import org.apache.kafka.coordinator.group.api.assignor.SubscriptionType;
import org.apache.kafka.coordinator.group.assignor.RangeAssignor;
import org.apache.kafka.coordinator.group.assignor.UniformAssignor;
import org.apache.kafka.coordinator.group.modern.Assignment;
import org.apache.kafka.coordinator.group.modern.GroupSpecImpl;
import org.apache.kafka.coordinator.group.modern.MemberSubscriptionAndAssignmentImpl;

/**
 * Runs Kafka's own server-side assignors on cases read from stdin, for
 * test_kafka_assignors.py. The GroupSpec is built as TargetAssignmentBuilder builds it:
 * members put in a HashMap in the order given, each current assignment made as
 * Assignment.fromRecord makes it (a HashMap of topic to HashSet, filled in the order given).
 *
 * Input, one case:  "case uniform|range [homogeneous|heterogeneous]" (the GroupSpec's
 * subscription type; without it, homogeneous when every member's topics are the same),
 * then "topic HEX32 COUNT" lines, then
 * "member ID TOPICS|- ASSIGNMENT|- [INSTANCE]" lines (TOPICS: HEX32,HEX32;
 * ASSIGNMENT: HEX32:P,P/HEX32:P), then "end". Output: one "member ID ASSIGNMENT|-" line
 * per member (topics and partitions sorted), then "done".
 */
public class KafkaAssignorHarness {
    static Uuid uuid(String hex) {
        return new Uuid(Long.parseUnsignedLong(hex.substring(0, 16), 16), Long.parseUnsignedLong(hex.substring(16), 16));
    }

    static String hex(Uuid u) {
        return String.format("%016x%016x", u.getMostSignificantBits(), u.getLeastSignificantBits());
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        PrintStream out = new PrintStream(new BufferedOutputStream(System.out), false);
        String name = "uniform";
        String type = null;
        Map<Uuid, Integer> counts = new HashMap<>();
        List<String[]> members = new ArrayList<>();
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.trim().split(" ");
            switch (f[0]) {
                case "case": name = f[1]; type = f.length > 2 ? f[2] : null; counts = new HashMap<>(); members = new ArrayList<>(); break;
                case "topic": counts.put(uuid(f[1]), Integer.parseInt(f[2])); break;
                case "member": members.add(f); break;
                case "end": run(name, type, counts, members, out); break;
                default: break;
            }
        }
        out.flush();
    }

    static void run(String name, String given, Map<Uuid, Integer> counts, List<String[]> members, PrintStream out) {
        Map<String, MemberSubscriptionAndAssignmentImpl> specs = new HashMap<>();
        Map<Uuid, Map<Integer, String>> inverted = new HashMap<>();
        Set<Set<Uuid>> distinct = new HashSet<>();
        for (String[] f : members) {
            Set<Uuid> topics = new HashSet<>();
            if (!f[2].equals("-")) for (String t : f[2].split(",")) topics.add(uuid(t));
            distinct.add(topics);
            List<Map.Entry<Uuid, List<Integer>>> held = new ArrayList<>();
            if (!f[3].equals("-")) {
                for (String tp : f[3].split("/")) {
                    String[] kv = tp.split(":");
                    List<Integer> partitions = new ArrayList<>();
                    for (String p : kv[1].split(",")) partitions.add(Integer.parseInt(p));
                    held.add(Map.entry(uuid(kv[0]), partitions));
                }
            }
            Map<Uuid, Set<Integer>> assignment = held.stream().collect(Collectors.toMap(Map.Entry::getKey, e -> new HashSet<>(e.getValue())));
            for (Map.Entry<Uuid, Set<Integer>> e : assignment.entrySet())
                for (Integer p : e.getValue()) inverted.computeIfAbsent(e.getKey(), k -> new HashMap<>()).put(p, f[1]);
            Optional<String> instance = f.length > 4 ? Optional.of(f[4]) : Optional.empty();
            specs.put(f[1], new MemberSubscriptionAndAssignmentImpl(Optional.empty(), instance, topics, new Assignment(assignment)));
        }
        SubscriptionType type = given != null ? SubscriptionType.valueOf(given.toUpperCase())
            : distinct.size() <= 1 ? SubscriptionType.HOMOGENEOUS : SubscriptionType.HETEROGENEOUS;
        GroupSpec spec = new GroupSpecImpl(Collections.unmodifiableMap(specs), type, inverted);
        Map<Uuid, Integer> partitionCounts = counts;
        SubscribedTopicDescriber describer = new SubscribedTopicDescriber() {
            public int numPartitions(Uuid topicId) { return partitionCounts.getOrDefault(topicId, -1); }
            public Set<String> racksForPartition(Uuid topicId, int partition) { return Set.of(); }
        };
        ConsumerGroupPartitionAssignor assignor = name.equals("range") ? new RangeAssignor() : new UniformAssignor();
        GroupAssignment result = assignor.assign(spec, describer);
        for (String[] f : members) {
            MemberAssignment assigned = result.members().get(f[1]);
            TreeMap<String, String> sorted = new TreeMap<>();
            if (assigned != null)
                for (Map.Entry<Uuid, Set<Integer>> e : assigned.partitions().entrySet())
                    if (!e.getValue().isEmpty())
                        sorted.put(hex(e.getKey()), new TreeSet<>(e.getValue()).stream().map(String::valueOf).collect(Collectors.joining(",")));
            List<String> parts = new ArrayList<>();
            sorted.forEach((t, ps) -> parts.add(t + ":" + ps));
            out.println("member " + f[1] + " " + (parts.isEmpty() ? "-" : String.join("/", parts)));
        }
        out.println("done");
    }
}
