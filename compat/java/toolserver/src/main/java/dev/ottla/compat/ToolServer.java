package dev.ottla.compat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.common.utils.internals.KafkaThread;
import org.apache.kafka.common.utils.internals.Exit;

/**
 * Runs Kafka's command-line tools one after another in this one JVM, so that each run costs the
 * tool's work rather than a JVM start and its class loading.
 *
 * <p>Protocol: one JSON request per line on stdin, {@code {"main": <class>, "args": [...],
 * "stdin": <text or null>}}; one JSON line on stdout per request, {@code {"exit": <code>,
 * "stdout": <text>, "stderr": <text>, "leaked": [<thread name>...]}}, the code and output the tool
 * would give as a process of its own, and the Kafka client threads it left running (a client it
 * never closed: its process's exit would end them, here the caller retires this JVM). The tool's {@code System.in/out/err} are swapped for the request's; its
 * {@code Exit.exit/halt} unwind the tool instead of ending the JVM; the shutdown hooks it adds
 * through {@code Exit.addShutdownHook} run when it ends, as they would at its JVM's exit. What a
 * thread prints after it called exit is dropped: in a process of its own it would never resume.
 *
 * <p>Requests run one at a time (the swapped streams are global). Tools that call
 * {@code System.exit} or register hooks with the {@code Runtime} cannot run here: the caller
 * (compat/kafka.py) starts them in a JVM of their own.
 */
public final class ToolServer {
    /** How long a tool's shutdown hooks may take, as a bound on a hook that never returns. */
    private static final long HOOKS_TIMEOUT_MS = 30_000;
    /** How long the tool's thread may take to unwind after it exited. */
    private static final long UNWIND_TIMEOUT_MS = 5_000;
    /** How long the Kafka client threads a tool started may take to end after it did. */
    private static final long CLIENT_THREADS_GRACE_MS = 1_000;

    /** Thrown by the exit and halt procedures to unwind the tool that called them. */
    private static final class ToolExit extends Error {
        private static final long serialVersionUID = 1L;

        ToolExit(int code) {
            super("exit " + code, null, false, false);
        }
    }

    /** The running tool's exit code: completed by its first exit or halt, or when main ends. */
    private static volatile CompletableFuture<Integer> exitCode = new CompletableFuture<>();
    /** Threads that called exit or halt during the running tool: their later output is dropped. */
    private static final Set<Thread> exitedThreads = ConcurrentHashMap.newKeySet();
    private static final List<Runnable> shutdownHooks = new ArrayList<>();

    private ToolServer() {}

    public static void main(String[] args) throws IOException {
        // The protocol's own streams, taken before any tool swaps System's.
        PrintStream replies = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        BufferedReader requests = new BufferedReader(new InputStreamReader(new FileInputStream(FileDescriptor.in), StandardCharsets.UTF_8));
        Exit.Procedure unwind = (code, message) -> {
            exitedThreads.add(Thread.currentThread());
            exitCode.complete(code);
            throw new ToolExit(code);
        };
        Exit.setExitProcedure(unwind);
        Exit.setHaltProcedure(unwind);
        Exit.setShutdownHookAdder((name, hook) -> {
            synchronized (shutdownHooks) {
                shutdownHooks.add(hook);
            }
        });
        ObjectMapper json = new ObjectMapper();
        for (String line = requests.readLine(); line != null; line = requests.readLine()) {
            JsonNode request = json.readTree(line);
            List<String> toolArgs = new ArrayList<>();
            request.get("args").forEach(arg -> toolArgs.add(arg.asText()));
            JsonNode stdin = request.get("stdin");
            ObjectNode reply = run(request.get("main").asText(), toolArgs.toArray(new String[0]),
                    stdin == null || stdin.isNull() ? "" : stdin.asText(), json);
            replies.println(json.writeValueAsString(reply));
        }
        // End of requests: threads a tool left behind must not keep this JVM alive.
        System.exit(0);
    }

    /** Runs one tool to its end with the given stdin and returns its exit code and output. */
    private static ObjectNode run(String mainClass, String[] args, String stdin, ObjectMapper json) {
        Charset charset = Charset.defaultCharset();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        InputStream originalIn = System.in;
        PrintStream originalOut = System.out;
        PrintStream originalErr = System.err;
        PrintStream toolOut = new PrintStream(new Capture(out), true, charset);
        PrintStream toolErr = new PrintStream(new Capture(err), true, charset);
        CompletableFuture<Integer> exited = new CompletableFuture<>();
        exitCode = exited;
        exitedThreads.clear();
        System.setIn(new ByteArrayInputStream(stdin.getBytes(charset)));
        System.setOut(toolOut);
        System.setErr(toolErr);
        Set<Thread> before = new HashSet<>(Thread.getAllStackTraces().keySet());
        List<String> leaked = new ArrayList<>();
        int code;
        try {
            Thread tool = new Thread(() -> exited.complete(invokeMain(mainClass, args)), "main");
            tool.start();
            code = exited.join();
            runShutdownHooks();
            tool.join(UNWIND_TIMEOUT_MS);
            leaked = clientThreadsLeft(before);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            code = 1;
        } finally {
            toolOut.flush();
            toolErr.flush();
            System.setIn(originalIn);
            System.setOut(originalOut);
            System.setErr(originalErr);
        }
        ObjectNode reply = json.createObjectNode();
        reply.put("exit", code);
        reply.put("stdout", out.toString(charset));
        reply.put("stderr", err.toString(charset));
        leaked.forEach(reply.putArray("leaked")::add);
        return reply;
    }

    /** Collects a tool's output but for what a thread writes after it called exit. */
    private static final class Capture extends OutputStream {
        private final ByteArrayOutputStream sink;

        Capture(ByteArrayOutputStream sink) {
            this.sink = sink;
        }

        @Override
        public void write(int b) {
            if (!exitedThreads.contains(Thread.currentThread())) {
                sink.write(b);
            }
        }

        @Override
        public void write(byte[] b, int off, int len) {
            if (!exitedThreads.contains(Thread.currentThread())) {
                sink.write(b, off, len);
            }
        }
    }

    /** Kafka client threads started since `before` and still alive after a grace period. */
    private static List<String> clientThreadsLeft(Set<Thread> before) throws InterruptedException {
        long deadline = System.currentTimeMillis() + CLIENT_THREADS_GRACE_MS;
        List<String> left = new ArrayList<>();
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (thread instanceof KafkaThread && !before.contains(thread)) {
                thread.join(Math.max(1, deadline - System.currentTimeMillis()));
                if (thread.isAlive()) {
                    left.add(thread.getName());
                }
            }
        }
        return left;
    }

    /** The tool's main; 0 when it returns, 1 (reported as the JVM would) when it throws. */
    private static int invokeMain(String mainClass, String[] args) {
        try {
            Method main = Class.forName(mainClass).getMethod("main", String[].class);
            main.invoke(null, (Object) args);
            return 0;
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ToolExit) {
                return exitCode.join();
            }
            System.err.print("Exception in thread \"main\" ");
            cause.printStackTrace();
            return 1;
        } catch (ToolExit e) {
            return exitCode.join();
        } catch (ReflectiveOperationException e) {
            System.err.println("Error: could not run " + mainClass + ": " + e);
            return 1;
        }
    }

    /** The hooks the tool added, each on its own thread and all at once, as the JVM runs them. */
    private static void runShutdownHooks() throws InterruptedException {
        List<Thread> running = new ArrayList<>();
        synchronized (shutdownHooks) {
            shutdownHooks.forEach(hook -> running.add(new Thread(hook, "shutdown-hook")));
            shutdownHooks.clear();
        }
        running.forEach(Thread::start);
        long deadline = System.currentTimeMillis() + HOOKS_TIMEOUT_MS;
        for (Thread hook : running) {
            hook.join(Math.max(1, deadline - System.currentTimeMillis()));
        }
    }
}
