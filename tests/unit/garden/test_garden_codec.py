"""Garden wire codec: exact bytes of the Go client and server round-trip, Go-style decoding rules."""

from __future__ import annotations

import pytest

from garden import errors, models
from garden.api import codec
from garden.api.codec import (
    BANDWIDTH_LIMITS,
    CAPACITY,
    CONTAINER_INFO,
    CONTAINER_SPEC,
    CPU_LIMITS,
    DURATION,
    ENVELOPE,
    HANDLE_RESPONSE,
    HANDLES,
    INFO_ENTRIES,
    MEMORY_LIMITS,
    METRICS,
    METRICS_ENTRIES,
    NET_IN,
    NET_IN_REQUEST,
    NET_OUT_RULE,
    NET_OUT_RULES,
    PROCESS_PAYLOAD,
    PROCESS_SPEC,
    PROPERTY_VALUE,
    STOP_REQUEST,
    STR_MAP,
)

# Every distinct JSON body of garden-wire-transcript.txt (Go client <-> Go server), with its type
# (the transcript's neutral path placeholders are replaced by plain paths).
GO_BODIES = [
    (CAPACITY,
     b'{"memory_in_bytes":1073741824,"disk_in_bytes":2147483648,"schedulable_disk_in_bytes"'
     b':3221225472,"max_containers":250}\n'),
    (CONTAINER_SPEC,
     b'{"image":{},"limits":{"bandwidth_limits":{},"cpu_limits":{},"disk_limits":{},"memory'
     b'_limits":{},"pid_limits":{}}}\n'),
    (HANDLE_RESPONSE, b'{"Handle":"c1"}\n'),
    (CONTAINER_SPEC,
     b'{"handle":"c1","grace_time":30000000000,"rootfs":"/rootfs/c1","image":{"uri":"docker'
     b':///busybox#1.36","username":"u","password":"p"},"bind_mounts":[{"src_path":"/host",'
     b'"dst_path":"/ctr","mode":1}],"network":"10.254.1.0/30","properties":{"a":"b"},"env":'
     b'["X=1"],"privileged":true,"limits":{"bandwidth_limits":{"rate":1,"burst":2},"cpu_lim'
     b'its":{"weight":100,"limit_in_shares":100},"disk_limits":{"byte_hard":1073741824,"sco'
     b'pe":1},"memory_limits":{"limit_in_bytes":67108864},"pid_limits":{"max":128}},"netout'
     b'_rules":[{"protocol":1,"networks":[{"start":"8.8.8.8","end":"8.8.8.8"}],"ports":[{"s'
     b'tart":53,"end":53}],"log":true},{"protocol":3,"icmps":{"type":8,"code":0}}],"netin":'
     b'[{"host_port":0,"container_port":8080}]}\n'),
    (ENVELOPE,
     b'{"Type":"","Message":"Handle \'dup\' already in use","Handle":"","ProcessID":"","Binar'
     b'y":""}\n'),
    (HANDLES, b'{"Handles":["c1"]}\n'),
    (HANDLES, b'{"Handles":[]}\n'),
    (CONTAINER_INFO,
     b'{"State":"active","Events":["oom"],"HostIP":"10.254.0.1","ContainerIP":"10.254.0.2",'
     b'"ContainerIPv6":"","ExternalIP":"192.0.2.1","ContainerPath":"/var/gdn/depot/c1","Pro'
     b'cessIDs":null,"Properties":{"foo":"bar"},"MappedPorts":[{"HostPort":61001,"Container'
     b'Port":8080}]}\n'),
    (INFO_ENTRIES,
     b'{"c1":{"Info":{"State":"active","Events":["oom"],"HostIP":"10.254.0.1","ContainerIP"'
     b':"10.254.0.2","ContainerIPv6":"","ExternalIP":"192.0.2.1","ContainerPath":"/var/gdn/'
     b'depot/c1","ProcessIDs":null,"Properties":{"foo":"bar"},"MappedPorts":[{"HostPort":61'
     b'001,"ContainerPort":8080}]},"Err":null},"missing":{"Info":{"State":"","Events":null,'
     b'"HostIP":"","ContainerIP":"","ContainerIPv6":"","ExternalIP":"","ContainerPath":"","'
     b'ProcessIDs":null,"Properties":null,"MappedPorts":null},"Err":{"Type":"","Message":"u'
     b'nknown handle: missing","Handle":"","ProcessID":"","Binary":""}}}\n'),
    (METRICS_ENTRIES,
     b'{"c1":{"Metrics":{"MemoryStat":{"active_anon":0,"active_file":0,"cache":1,"hierarchi'
     b'cal_memory_limit":0,"inactive_anon":0,"inactive_file":0,"mapped_file":0,"pgfault":0,'
     b'"pgmajfault":0,"pgpgin":0,"pgpgout":0,"rss":2,"total_active_anon":0,"total_active_fi'
     b'le":0,"total_cache":0,"total_inactive_anon":0,"total_inactive_file":0,"total_mapped_'
     b'file":0,"total_pgfault":0,"total_pgmajfault":0,"total_pgpgin":0,"total_pgpgout":0,"t'
     b'otal_rss":0,"total_unevictable":0,"unevictable":0,"swap":0,"hierarchical_memsw_limit'
     b'":0,"total_swap":0,"TotalUsageTowardLimit":3,"anon":0,"file":0,"swapcached":0},"CPUS'
     b'tat":{"Usage":4,"User":5,"System":6},"DiskStat":{"TotalBytesUsed":7,"TotalInodesUsed'
     b'":0,"ExclusiveBytesUsed":8,"ExclusiveInodesUsed":0},"NetworkStat":{"RxBytes":9,"TxBy'
     b'tes":10},"PidStat":{"Current":3,"Max":128},"Age":1500000000,"CPUEntitlement":11},"Er'
     b'r":null},"missing":{"Metrics":{"MemoryStat":{"active_anon":0,"active_file":0,"cache"'
     b':0,"hierarchical_memory_limit":0,"inactive_anon":0,"inactive_file":0,"mapped_file":0'
     b',"pgfault":0,"pgmajfault":0,"pgpgin":0,"pgpgout":0,"rss":0,"total_active_anon":0,"to'
     b'tal_active_file":0,"total_cache":0,"total_inactive_anon":0,"total_inactive_file":0,"'
     b'total_mapped_file":0,"total_pgfault":0,"total_pgmajfault":0,"total_pgpgin":0,"total_'
     b'pgpgout":0,"total_rss":0,"total_unevictable":0,"unevictable":0,"swap":0,"hierarchica'
     b'l_memsw_limit":0,"total_swap":0,"TotalUsageTowardLimit":0,"anon":0,"file":0,"swapcac'
     b'hed":0},"CPUStat":{"Usage":0,"User":0,"System":0},"DiskStat":{"TotalBytesUsed":0,"To'
     b'talInodesUsed":0,"ExclusiveBytesUsed":0,"ExclusiveInodesUsed":0},"NetworkStat":null,'
     b'"PidStat":{"Current":0,"Max":0},"Age":0,"CPUEntitlement":0},"Err":{"Type":"","Messag'
     b'e":"unknown handle: missing","Handle":"","ProcessID":"","Binary":""}}}\n'),
    (INFO_ENTRIES, b'{}\n'),
    (METRICS,
     b'{"MemoryStat":{"active_anon":0,"active_file":0,"cache":1,"hierarchical_memory_limit"'
     b':0,"inactive_anon":0,"inactive_file":0,"mapped_file":0,"pgfault":0,"pgmajfault":0,"p'
     b'gpgin":0,"pgpgout":0,"rss":2,"total_active_anon":0,"total_active_file":0,"total_cach'
     b'e":0,"total_inactive_anon":0,"total_inactive_file":0,"total_mapped_file":0,"total_pg'
     b'fault":0,"total_pgmajfault":0,"total_pgpgin":0,"total_pgpgout":0,"total_rss":0,"tota'
     b'l_unevictable":0,"unevictable":0,"swap":0,"hierarchical_memsw_limit":0,"total_swap":'
     b'0,"TotalUsageTowardLimit":3,"anon":0,"file":0,"swapcached":0},"CPUStat":{"Usage":4,"'
     b'User":5,"System":6},"DiskStat":{"TotalBytesUsed":7,"TotalInodesUsed":0,"ExclusiveByt'
     b'esUsed":8,"ExclusiveInodesUsed":0},"NetworkStat":{"RxBytes":9,"TxBytes":10},"PidStat'
     b'":{"Current":3,"Max":128},"Age":1500000000,"CPUEntitlement":11}\n'),
    (BANDWIDTH_LIMITS, b'{"rate":100,"burst":200}\n'),
    (CPU_LIMITS, b'{"limit_in_shares":512}\n'),
    (MEMORY_LIMITS, b'{"limit_in_bytes":67108864}\n'),
    (NET_IN_REQUEST, b'{"handle":"c1","container_port":8080}\n'),
    (NET_IN, b'{"host_port":61001,"container_port":8080}\n'),
    (NET_OUT_RULE,
     b'{"protocol":2,"networks":[{"start":"1.2.3.4","end":"1.2.3.4"}],"ports":[{"start":53,'
     b'"end":53}]}\n'),
    (NET_OUT_RULES, b'[{},{"protocol":1,"ports":[{"start":80,"end":443}]}]\n'),
    (STR_MAP, b'{"foo":"bar","garden.state":"created"}\n'),
    (PROPERTY_VALUE, b'{"value":"bar"}\n'),
    (PROPERTY_VALUE, b'{"value":"v\\"1"}\n'),
    (DURATION, b'5000000000\n'),
    (STOP_REQUEST, b'{"kill":true}\n'),
    (PROCESS_SPEC,
     b'{"id":"p-echo","path":"echo","args":["a","b"],"env":["A=1"],"dir":"/root","user":"ro'
     b'ot","rlimits":{},"tty":{"window_size":{"columns":80,"rows":24}},"image":{}}\n'),
    (PROCESS_PAYLOAD, b'{"process_id":"p-echo","stream_id":"1"}\n'),
    (PROCESS_PAYLOAD, b'{"process_id":"p-echo","tty":{"window_size":{"columns":100,"rows":50}}}\n'),
    (PROCESS_PAYLOAD, b'{"process_id":"p-echo","source":0,"data":"stdin-line-1\\n"}\n'),
    (PROCESS_PAYLOAD, b'{"process_id":"p-echo","source":0}\n'),
    (PROCESS_PAYLOAD, b'{"process_id":"p-echo","exit_status":42}\n'),
    (PROCESS_SPEC,
     b'{"path":"waitsig","rlimits":{"nofile":1024},"limits":{"cpu_limits":{},"memory_limits'
     b'":{"limit_in_bytes":1048576}},"image":{}}\n'),
    (PROCESS_PAYLOAD, b'{"process_id":"generated-proc-id","stream_id":"2"}\n'),
    (PROCESS_PAYLOAD, b'{"process_id":"generated-proc-id","signal":0}\n'),
    (PROCESS_PAYLOAD, b'{"process_id":"generated-proc-id","exit_status":143}\n'),
    (PROCESS_SPEC, b'{"id":"p-sleep","path":"sleep","rlimits":{},"image":{"uri":"/rootfs/pea"}}\n'),
    (ENVELOPE,
     b'{"Type":"ProcessNotFoundError","Message":"unknown process: idontexist","Handle":"","'
     b'ProcessID":"idontexist","Binary":""}\n'),
    (PROCESS_SPEC, b'{"path":"/nonexistent","rlimits":{},"image":{}}\n'),
    (ENVELOPE,
     b'{"Type":"ExecutableNotFoundError","Message":"exec: \\"/nonexistent\\": stat /nonexiste'
     b'nt: no such file or directory","Handle":"","ProcessID":"","Binary":""}\n'),
    (ENVELOPE,
     b'{"Type":"ContainerNotFoundError","Message":"unknown handle: potato","Handle":"potato'
     b'","ProcessID":"","Binary":""}\n'),
]


@pytest.mark.parametrize(("kind", "body"), GO_BODIES)
def test_go_bytes_round_trip_exactly(kind: codec.Kind, body: bytes) -> None:
    assert codec.encode(kind, codec.decode(kind, body)) == body


def test_go_client_create_spec_decodes_to_models() -> None:
    body = next(b for k, b in GO_BODIES if k is CONTAINER_SPEC and b"grace_time" in b)
    spec = codec.decode(CONTAINER_SPEC, body)
    assert spec.handle == "c1" and spec.grace_time_ns == 30_000_000_000 and spec.privileged
    assert spec.image == models.ImageRef("docker:///busybox#1.36", "u", "p")
    assert spec.bind_mounts == [models.BindMount("/host", "/ctr", models.BIND_MOUNT_RW)]
    assert spec.limits.memory.limit_in_bytes == 67108864 and spec.limits.pid.max == 128
    assert spec.limits.disk.scope == models.DISK_SCOPE_EXCLUSIVE
    assert spec.net_out[1].icmps == models.ICMPControl(8, 0)
    assert spec.net_in == [models.NetIn(0, 8080)]


def test_process_spec_keys() -> None:
    spec = models.ProcessSpec(
        id="p", path="sh", rlimits={"nofile": 0, "core": 5}, tty=models.TTYSpec(),
        override_limits=models.ProcessLimits(memory=models.MemoryLimits(1)))
    assert codec.encode(PROCESS_SPEC, spec) == (
        b'{"id":"p","path":"sh","rlimits":{"core":5,"nofile":0},'
        b'"limits":{"cpu_limits":{},"memory_limits":{"limit_in_bytes":1}},"tty":{},"image":{}}\n')
    assert codec.decode(PROCESS_SPEC, b'{"tty":{}}').tty == models.TTYSpec()
    assert codec.decode(PROCESS_SPEC, b'{}').tty is None


def test_stdin_replacement_characters_decode() -> None:
    line = b'{"process_id":"p","source":0,"data":"caf\xc3\xa9 bin:\\ufffd\\ufffd\\n"}\n'
    payload = codec.decode(PROCESS_PAYLOAD, line)
    assert payload.source == 0 and payload.data == "café bin:\ufffd\ufffd\n"


def test_zero_values_keep_pointers_and_nulls() -> None:
    assert codec.encode(PROCESS_PAYLOAD, codec.ProcessPayload("p", exit_status=0)) == \
        b'{"process_id":"p","exit_status":0}\n'
    assert codec.encode(CONTAINER_INFO, models.ContainerInfo()) == (
        b'{"State":"","Events":null,"HostIP":"","ContainerIP":"","ContainerIPv6":"","ExternalIP":"",'
        b'"ContainerPath":"","ProcessIDs":null,"Properties":null,"MappedPorts":null}\n')
    metrics = codec.encode(METRICS, models.Metrics())
    assert b'"TotalUsageTowardLimit":0' in metrics and b'"NetworkStat":null' in metrics
    assert codec.encode(CAPACITY, models.Capacity()) == b"{}\n"


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored() -> None:
    spec = codec.decode(CONTAINER_SPEC, b'{"HANDLE":"x","Grace_Time":5,"Whatever":{"a":[1]},"limits":null}')
    assert (spec.handle, spec.grace_time_ns, spec.limits) == ("x", 5, models.Limits())
    body = b'{"state":"active","mappedports":[{"hostport":1,"containerport":2}]}'
    info = codec.decode(CONTAINER_INFO, body)
    assert info.state == "active" and info.mapped_ports == [models.PortMapping(1, 2)]
    assert codec.decode(CONTAINER_SPEC, b"{}") == models.ContainerSpec()
    assert codec.decode(CONTAINER_SPEC, b"null") == models.ContainerSpec()


def test_only_the_first_json_value_is_read() -> None:
    assert codec.decode(STOP_REQUEST, b'{"kill":true}{"kill":false} trailing').kill is True


def test_go_html_escaping() -> None:
    assert codec.encode(PROPERTY_VALUE, codec.PropertyValue("<a&b>\u2028é")) == \
        '{"value":"\\u003ca\\u0026b\\u003e\\u2028é"}\n'.encode()
    assert codec.decode(PROPERTY_VALUE, b'{"value":"\\u003ca\\u003e"}').value == "<a>"


@pytest.mark.parametrize(("body", "message"), [
    (b"", "EOF"),
    (b"  \n", "EOF"),
    (b"{not json", "invalid character 'n' looking for beginning of object key string"),
    (b'{"handle":}', "invalid character '}' looking for beginning of value"),
    (b'{"handle" 1}', "invalid character '1' after object key"),
    (b'{"handle":"a" "b"}', "invalid character '\"' after object key:value pair"),
    (b'{"env":["a" "b"]}', "invalid character '\"' after array element"),
    (b'{"handle":"a', "unexpected EOF"),
    (b'{"handle":', "unexpected EOF"),
    (b'{"grace_time":NaN}', "invalid character 'N' looking for beginning of value"),
])
def test_malformed_json_gets_go_messages(body: bytes, message: str) -> None:
    with pytest.raises(errors.BadRequestError) as caught:
        codec.decode(CONTAINER_SPEC, body)
    assert caught.value.message == message and caught.value.type_name == "" and caught.value.status == 500


@pytest.mark.parametrize(("kind", "body", "message"), [
    (CONTAINER_SPEC, b'{"handle":5}',
     "json: cannot unmarshal number 5 into Go struct field ContainerSpec.handle of type string"),
    (CONTAINER_SPEC, b'{"grace_time":"1s"}',
     "json: cannot unmarshal string into Go struct field ContainerSpec.grace_time of type time.Duration"),
    (CONTAINER_SPEC, b'{"limits":{"memory_limits":{"limit_in_bytes":-1}}}',
     "json: cannot unmarshal number -1 into Go struct field "
     "MemoryLimits.limits.memory_limits.limit_in_bytes of type uint64"),
    (CONTAINER_SPEC, b'{"privileged":1}',
     "json: cannot unmarshal number 1 into Go struct field ContainerSpec.privileged of type bool"),
    (CONTAINER_SPEC, b'{"env":"A=1"}',
     "json: cannot unmarshal string into Go struct field ContainerSpec.env of type []string"),
    (CONTAINER_SPEC, b'{"properties":{"a":1}}',
     "json: cannot unmarshal number 1 into Go struct field ContainerSpec.properties of type string"),
    (CONTAINER_SPEC, b"[]", "json: cannot unmarshal array into Go value of type garden.ContainerSpec"),
    (NET_OUT_RULE, b'{"protocol":256}',
     "json: cannot unmarshal number 256 into Go struct field NetOutRule.protocol of type uint8"),
    (NET_OUT_RULE, b'{"ports":[{"start":1.5}]}',
     "json: cannot unmarshal number 1.5 into Go struct field PortRange.ports.start of type uint16"),
    (NET_OUT_RULE, b'{"networks":[{"start":"not-an-ip"}]}', "invalid IP address: not-an-ip"),
    (PROCESS_SPEC, b'{"rlimits":{"nofile":true}}',
     "json: cannot unmarshal bool into Go struct field ResourceLimits.rlimits.nofile of type uint64"),
    (DURATION, b'"5s"', "json: cannot unmarshal string into Go value of type time.Duration"),
    (STOP_REQUEST, b'{"kill":"yes"}',
     "json: cannot unmarshal string into Go struct field StopRequest.kill of type bool"),
])
def test_wrong_types_are_rejected(kind: codec.Kind, body: bytes, message: str) -> None:
    with pytest.raises(errors.BadRequestError) as caught:
        codec.decode(kind, body)
    assert caught.value.message == message


@pytest.mark.parametrize("err", [
    errors.ContainerNotFoundError("c1"), errors.ProcessNotFoundError("p1"),
    errors.ExecutableNotFoundError("exec: nope"), errors.ServiceUnavailableError("busy"),
    errors.UnrecoverableError("broken"), errors.GardenError("plain"),
])
def test_error_envelopes_round_trip(err: errors.GardenError) -> None:
    body = codec.encode(ENVELOPE, codec.error_envelope(err))
    back = codec.envelope_error(codec.decode(ENVELOPE, body))
    assert type(back) is type(err) and back.message == err.message
    assert (back.handle, back.process_id, back.status) == (err.handle, err.process_id, err.status)


def test_bad_request_is_a_plain_envelope() -> None:
    body = codec.encode(ENVELOPE, codec.error_envelope(errors.BadRequestError("EOF")))
    assert body == b'{"Type":"","Message":"EOF","Handle":"","ProcessID":"","Binary":""}\n'


def test_bulk_entries_carry_plain_errors() -> None:
    err = codec.generic_envelope(errors.ContainerNotFoundError("m"))
    entry = codec.BulkEntry(models.ContainerInfo(), err)
    body = codec.encode(INFO_ENTRIES, {"m": entry})
    assert body.endswith(b'"Err":{"Type":"","Message":"unknown handle: m","Handle":"","ProcessID":"",'
                         b'"Binary":""}}}\n')
    decoded = codec.decode(METRICS_ENTRIES, b'{"a":{"Metrics":{"Age":5},"Err":null}}')
    assert decoded["a"].value.age_ns == 5 and decoded["a"].err is None
