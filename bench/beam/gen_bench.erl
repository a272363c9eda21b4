%% gen_bench: the OTP baselines of effect-gen-server's benchmark.
%%
%% A record is a minimal gen_server whose state is a map (the shape of the
%% Character resource: id, name, current_year), registered by key in an ETS
%% table as ash_gen_server registers its servers in an (ETS-backed) Registry.
%% There is no supervisor: the figures are the floor under ash_gen_server.
%%
%% main/1 takes [Size, TimeMs, MaxOps, WarmupMs, WarmupMaxOps, Callers,
%% LatencyTimeMs] as strings (erl -run; LatencyTimeMs, the timed part of the
%% latency figures, defaults to TimeMs) and prints one JSON line per workload:
%%   {"workload":..., "size":..., "value":..., "unit":..., "higherIsBetter":..., "note":...}
%% Units are ASCII ("us" for microseconds). Every figure is measured: a warm-up,
%% then as many operations as fit in TimeMs, bounded by MaxOps.
-module(gen_bench).
-behaviour(gen_server).

-export([main/1]).
-export([init/1, handle_call/3, handle_cast/2]).

%% ---------------------------------------------------------------------------
%% The record server

init(Record) -> {ok, Record}.

handle_call(get, _From, Record) ->
    {reply, Record, Record};
handle_call({update, Field, Value}, _From, Record) ->
    New = Record#{Field := Value},
    {reply, New, New}.

handle_cast(_Message, Record) -> {noreply, Record}.

%% ---------------------------------------------------------------------------
%% Entry point

main(Args) ->
    [Size, TimeMs, MaxOps, WarmupMs, WarmupMax, Callers | Rest] = [list_to_integer(A) || A <- Args],
    Budget = #{time => TimeMs, max => MaxOps, warmup => WarmupMs, warmup_max => WarmupMax},
    LatencyBudget = Budget#{time := case Rest of [L] -> L; [] -> TimeMs end},
    note(io_lib:format("OTP ~s, ~b schedulers online, ERTS ~s",
                       [erlang:system_info(otp_release), erlang:system_info(schedulers_online),
                        erlang:system_info(version)])),
    %% The keys live in persistent_term: closures that captured the tuple
    %% would copy all of it into every caller process they are spawned in.
    persistent_term:put(?MODULE, list_to_tuple([key(I) || I <- lists:seq(0, Size - 1)])),
    Tab = ets:new(registry, [set, public, {read_concurrency, true}]),

    %% create: start Size gen_servers; memory: process memory they hold, idle.
    erlang:garbage_collect(),
    Mem0 = erlang:memory(processes),
    T0 = now_us(),
    start_all(Tab, 0, Size),
    Elapsed = now_us() - T0,
    erlang:garbage_collect(),
    Mem1 = erlang:memory(processes),
    emit(<<"create">>, Size, Size / (Elapsed / 1.0e6), <<"ops/s">>, true,
         io_lib:format("~b gen_server:start + ets:insert in ~b ms", [Size, Elapsed div 1000])),
    %% Less the record's own data (its state map, heap binaries included), as
    %% the Node figures subtract theirs: what keeping a record alive costs.
    Sample = lists:usort([(I * Size) div 1000 || I <- lists:seq(0, 999)]),
    Data = lists:sum([erts_debug:flat_size(record(I)) || I <- Sample]) / length(Sample)
        * erlang:system_info(wordsize),
    PerProcess = (Mem1 - Mem0) / Size,
    emit(<<"memory/record">>, Size, PerProcess - Data, <<"B/item">>, false,
         io_lib:format("~b B per process less ~b B of state map; erlang:memory(processes) delta ~.1f MiB over ~b processes",
                       [round(PerProcess), round(Data), (Mem1 - Mem0) / 1048576, Size])),

    Pid = fun(I) -> [{_, P}] = ets:lookup(Tab, key_at(index(I, Size))), P end,
    Get = fun(I) -> gen_server:call(Pid(I), get) end,
    Update = fun(I) -> gen_server:call(Pid(I), {update, current_year, 1900 + I rem 100}) end,

    ops(<<"get x1">>, Size, Get, 1, Budget),
    %% The same call to one process only: no cache misses, no registry.
    [{_, Hot}] = ets:lookup(Tab, key_at(0)),
    ops(<<"get x1 (one process)">>, Size, fun(_) -> gen_server:call(Hot, get) end, 1, Budget),
    ops(<<"get x", (integer_to_binary(Callers))/binary>>, Size, Get, Callers, Budget),
    ops(<<"update x1">>, Size, Update, 1, Budget),
    ops(<<"update x", (integer_to_binary(Callers))/binary>>, Size, Update, Callers, Budget),
    latency(<<"get">>, Size, Get, Callers, LatencyBudget),
    latency(<<"update">>, Size, Update, Callers, LatencyBudget),

    %% The original's read: every server called in sequence, filtered, sorted
    %% and limited in the caller (ash_gen_server's DataLayer.run_query).
    %% A query that outlasts the whole budget is its own warm-up: it is timed
    %% once rather than run twice.
    Query = fun(_) -> read_all(Tab) end,
    {WarmOps, WarmMs} = run_for(Query, 1, WarmupMs, WarmupMax, 0),
    {QueryOps, QueryMs} = case WarmOps =:= 1 andalso WarmMs > TimeMs of
                              true -> {WarmOps, WarmMs};
                              false -> run_for(Query, 1, TimeMs, MaxOps, 0)
                          end,
    emit(<<"read filter+sort+10">>, Size, QueryOps / (QueryMs / 1000), <<"ops/s">>, true,
         io_lib:format("~b queries in ~b ms, each calls ~b servers", [QueryOps, round(QueryMs), Size])),
    hibernated(Size, Callers, Budget, LatencyBudget),
    halt(0).

%% ---------------------------------------------------------------------------
%% Hibernated records: Size more gen_servers started with {hibernate_after, 0},
%% so each hibernates as soon as its mailbox is empty (its heap compacted to
%% its state, its stack dropped) and every call wakes one.

hibernated(Size, Callers, Budget, LatencyBudget) ->
    Tab = ets:new(sleepers, [set, public, {read_concurrency, true}]),
    %% the callers of the workloads above are gone and every heap is collected before the reading
    timer:sleep(100),
    [erlang:garbage_collect(P) || P <- processes()],
    Mem0 = erlang:memory(processes),
    start_hibernating(Tab, 0, Size),
    Pid = fun(I) -> [{_, P}] = ets:lookup(Tab, key_at(index(I, Size))), P end,
    Asleep = await_hibernated(Tab, Size, 0),
    erlang:garbage_collect(),
    Mem1 = erlang:memory(processes),
    Sample = lists:usort([(I * Size) div 1000 || I <- lists:seq(0, 999)]),
    Data = lists:sum([erts_debug:flat_size(record(I)) || I <- Sample]) / length(Sample)
        * erlang:system_info(wordsize),
    PerProcess = (Mem1 - Mem0) / Size,
    emit(<<"memory/record hibernated">>, Size, PerProcess - Data, <<"B/item">>, false,
         io_lib:format("~b B per hibernated process less ~b B of state map; ~b of ~b sampled processes in erlang:hibernate",
                       [round(PerProcess), round(Data), Asleep, 100])),
    Update = fun(I) -> gen_server:call(Pid(I), {update, current_year, 1900 + I rem 100}) end,
    ops(<<"update x1 hibernated">>, Size, Update, 1, Budget),
    latency(<<"update">>, <<" hibernated">>, Size, Update, Callers, LatencyBudget).

start_hibernating(_Tab, Size, Size) -> ok;
start_hibernating(Tab, I, Size) ->
    {ok, Pid} = gen_server:start(?MODULE, record(I), [{hibernate_after, 0}]),
    true = ets:insert(Tab, {key_at(I), Pid}),
    start_hibernating(Tab, I + 1, Size).

%% Waits (at most 10 s) until 100 processes spread over the table are in
%% erlang:hibernate; how many are.
await_hibernated(Tab, Size, Tries) ->
    Pids = [P || I <- lists:seq(0, 99), [{_, P}] <- [ets:lookup(Tab, key_at((I * Size) div 100))]],
    Asleep = length([P || P <- Pids,
                          process_info(P, current_function) =:= {current_function, {erlang, hibernate, 3}}]),
    case Asleep =:= length(Pids) orelse Tries >= 100 of
        true -> Asleep;
        false -> timer:sleep(100), await_hibernated(Tab, Size, Tries + 1)
    end.

%% ---------------------------------------------------------------------------
%% Workloads

key(I) -> <<"id-", (integer_to_binary(I))/binary>>.

key_at(I) -> element(I + 1, persistent_term:get(?MODULE)).

record(I) ->
    #{id => key(I), name => <<"name-", (integer_to_binary(I))/binary>>, current_year => 1900 + I rem 100}.

%% The same stride through the keys as bench/workloads.ts indexFor.
index(I, Size) -> (I * 7919) rem Size.

start_all(_Tab, Size, Size) -> ok;
start_all(Tab, I, Size) ->
    {ok, Pid} = gen_server:start(?MODULE, record(I), []),
    true = ets:insert(Tab, {key_at(I), Pid}),
    start_all(Tab, I + 1, Size).

read_all(Tab) ->
    Pids = ets:select(Tab, [{{'_', '$1'}, [], ['$1']}]),
    Records = [gen_server:call(P, get) || P <- Pids],
    Matching = [R || R = #{current_year := Year} <- Records, Year >= 1980],
    Sorted = lists:sort(fun(#{name := A}, #{name := B}) -> A >= B end, Matching),
    lists:sublist(Sorted, 10).

ops(Name, Size, Op, Callers, #{time := TimeMs, max := Max, warmup := WarmupMs, warmup_max := WarmupMax}) ->
    run_for(Op, Callers, WarmupMs, WarmupMax, 15),
    {Ops, Ms} = run_for(Op, Callers, TimeMs, Max, 15),
    emit(Name, Size, Ops / (Ms / 1000), <<"ops/s">>, true,
         io_lib:format("~b calls in ~b ms, ~b caller~s", [Ops, round(Ms), Callers, plural(Callers)])).

latency(Name, Size, Op, Callers, Budget) -> latency(Name, <<>>, Size, Op, Callers, Budget).

latency(Name, Suffix, Size, Op, Callers, #{time := TimeMs, max := Max, warmup := WarmupMs, warmup_max := WarmupMax}) ->
    run_for(Op, Callers, WarmupMs, WarmupMax, 15),
    {Samples, Ms} = collect_for(Op, Callers, TimeMs, Max),
    Sorted = list_to_tuple(lists:sort(Samples)),
    N = tuple_size(Sorted),
    Mean = to_us(lists:sum(Samples) / N),
    Note = io_lib:format("~b calls in ~b ms, ~b callers; mean ~b us, p99.9 ~b us, max ~b us",
                         [N, round(Ms), Callers, round(Mean), round(to_us(percentile(Sorted, 0.999))),
                          round(to_us(element(N, Sorted)))]),
    C = integer_to_binary(Callers),
    emit(<<Name/binary, " p50 x", C/binary, Suffix/binary>>, Size, to_us(percentile(Sorted, 0.5)), <<"us">>, false, Note),
    emit(<<Name/binary, " p99 x", C/binary, Suffix/binary>>, Size, to_us(percentile(Sorted, 0.99)), <<"us">>, false, Note).

percentile(Sorted, Q) ->
    N = tuple_size(Sorted),
    element(max(1, min(N, ceil(Q * N))), Sorted).

to_us(Native) -> Native * erlang:convert_time_unit(1, second, nanosecond) / erlang:convert_time_unit(1, second, native) / 1000.

plural(1) -> "";
plural(_) -> "s".

%% ---------------------------------------------------------------------------
%% Running: Callers processes share an operation counter and a stop flag;
%% the clock is read every (Mask + 1) operations. The clock starts once every
%% caller is spawned and waiting.

run_for(Op, Callers, TimeMs, Max, Mask) ->
    {Results, Ms} = spawn_callers(fun(Ctl) -> count_loop(Op, Ctl, Mask, 0) end, Callers, TimeMs, Max),
    {lists:sum(Results), Ms}.

collect_for(Op, Callers, TimeMs, Max) ->
    {Results, Ms} = spawn_callers(fun(Ctl) -> sample_loop(Op, Ctl, erlang:monotonic_time(), []) end,
                                  Callers, TimeMs, Max),
    {lists:append(Results), Ms}.

spawn_callers(Loop, Callers, TimeMs, Max) ->
    Counter = atomics:new(2, []),
    Parent = self(),
    Workers = [spawn_link(fun() ->
                                  receive {go, Deadline} -> Parent ! {done, self(), Loop({Counter, Deadline, Max})} end
                          end)
               || _ <- lists:seq(1, Callers)],
    T0 = now_us(),
    [W ! {go, T0 + TimeMs * 1000} || W <- Workers],
    Results = [receive {done, W, R} -> R end || W <- Workers],
    {Results, (now_us() - T0) / 1000}.

next(Mask, {Counter, Deadline, Max}) ->
    case atomics:get(Counter, 2) of
        1 -> stop;
        0 ->
            I = atomics:add_get(Counter, 1, 1) - 1,
            case I >= Max orelse (I band Mask =:= 0 andalso now_us() >= Deadline) of
                true -> atomics:put(Counter, 2, 1), stop;
                false -> {ok, I}
            end
    end.

count_loop(Op, Ctl, Mask, Done) ->
    case next(Mask, Ctl) of
        stop -> Done;
        {ok, I} -> Op(I), count_loop(Op, Ctl, Mask, Done + 1)
    end.

%% Closed-loop latency: from the previous completion (or the start) to this
%% completion, as bench/harness.ts measures it.
sample_loop(Op, Ctl, Last, Acc) ->
    case next(15, Ctl) of
        stop -> Acc;
        {ok, I} ->
            Op(I),
            Now = erlang:monotonic_time(),
            sample_loop(Op, Ctl, Now, [Now - Last | Acc])
    end.

now_us() -> erlang:monotonic_time(microsecond).

%% ---------------------------------------------------------------------------
%% Output

emit(Workload, Size, Value, Unit, HigherIsBetter, Note) ->
    io:format("{\"workload\":\"~s\",\"size\":~b,\"value\":~s,\"unit\":\"~s\",\"higherIsBetter\":~s,\"note\":\"~s\"}~n",
              [Workload, Size, float_to_list(float(Value), [{decimals, 3}]), Unit, HigherIsBetter, escape(Note)]).

note(Text) ->
    io:format("{\"note\":\"~s\"}~n", [escape(Text)]).

escape(Text) ->
    lists:flatmap(fun($") -> "\\\""; ($\\) -> "\\\\"; (C) -> [C] end, lists:flatten(Text)).
