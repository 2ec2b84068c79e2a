"""The DXP envelope (``DxpMsg``, ``DxpRep``): swx's dxp schema accepts what the official terminal.xsd
accepts, envelope by envelope."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from lxml import etree

from tests.fixtures.ceb_official import OFFICIAL_IMPORT

if not OFFICIAL_IMPORT.exists():
    pytest.skip(f"official CEB schemas not available at {OFFICIAL_IMPORT}", allow_module_level=True)

from schemas.loader import dxp_schema  # noqa: E402
from tests.fixtures.ceb_mutants import _ds, _foreign  # noqa: E402
from tests.fixtures.ceb_official import (  # noqa: E402
    CJK,
    DXP,
    OFFICIAL_TERMINAL,
    _c,
    _children,
    _compare,
    _parser,
    _serialize,
    _signature,
    official_terminal_schema,
    samples,
)


def _envelope(payload: bytes, *, trans_info: bool = True) -> etree._Element:
    env = etree.Element(_c(DXP, "DxpMsg"), {"ver": "1.0"}, nsmap={"dxp": DXP})
    if trans_info:
        ti = etree.SubElement(env, _c(DXP, "TransInfo"))
        etree.SubElement(ti, _c(DXP, "CopMsgId")).text = "swx-test-0001"
        etree.SubElement(ti, _c(DXP, "SenderId")).text = "DXPENT0000000001"
        rids = etree.SubElement(ti, _c(DXP, "ReceiverIds"))
        etree.SubElement(rids, _c(DXP, "ReceiverId")).text = "DXPEDCCEB0000002"
        etree.SubElement(ti, _c(DXP, "CreatTime")).text = "2024-03-01T10:20:30"
        etree.SubElement(ti, _c(DXP, "MsgType")).text = "CEB311Message"
    etree.SubElement(env, _c(DXP, "Data")).text = base64.b64encode(payload).decode("ascii")
    return env


def _dx(env: etree._Element, path: str) -> etree._Element:
    el = env
    for step in path.split("/"):
        el = el.find(_c(DXP, step))
    return el


def _add_info(env: etree._Element, *children: etree._Element) -> etree._Element:
    info = etree.Element(_c(DXP, "AddInfo"))
    info.extend(children)
    _dx(env, "Data").addnext(info)
    return info


def _dxp(tag: str, text: str | None = None, /, **attrs: str) -> etree._Element:
    el = etree.Element(_c(DXP, tag), attrs)
    el.text = text
    return el


def _biz_key(n: int) -> etree._Element:
    bk = _dxp("BizKey")
    for i in range(n):
        bk.append(_dxp("Key", f"value{i}", name=f"key{i}"))
    return bk


def _envelope_mutations() -> list[tuple[str, Callable[[etree._Element], None]]]:
    sample_sig = _signature(etree.fromstring(samples()["CEB621Message"], _parser()))

    def receivers(n: int) -> Callable[[etree._Element], None]:
        def f(env: etree._Element) -> None:
            rids = _dx(env, "TransInfo/ReceiverIds")
            for i in range(n - 1):
                rids.append(_dxp("ReceiverId", f"DXPENT000000010{i}"))

        return f

    return [
        ("unchanged", lambda e: None),
        ("5 receivers", receivers(5)),
        ("6 receivers", receivers(6)),
        ("no receivers", lambda e: [_dx(e, "TransInfo/ReceiverIds").remove(c) for c in _children(_dx(e, "TransInfo/ReceiverIds"))]),
        ("ver 2.0", lambda e: e.set("ver", "2.0")),
        ("no ver", lambda e: e.attrib.pop("ver")),
        ("Id attribute", lambda e: e.set("Id", "env1")),
        ("Data not base64", lambda e: _dx(e, "Data").__setattr__("text", "***")),
        ("Data empty", lambda e: _dx(e, "Data").__setattr__("text", "")),
        ("SenderId of 17 chars", lambda e: _dx(e, "TransInfo/SenderId").__setattr__("text", "S" * 17)),
        ("SenderId of 16 CJK chars", lambda e: _dx(e, "TransInfo/SenderId").__setattr__("text", CJK * 16)),
        ("CreatTime not a dateTime", lambda e: _dx(e, "TransInfo/CreatTime").__setattr__("text", "20240301102030")),
        ("empty MsgType", lambda e: _dx(e, "TransInfo/MsgType").__setattr__("text", "")),
        ("MsgType of 31 chars", lambda e: _dx(e, "TransInfo/MsgType").__setattr__("text", "M" * 31)),
        ("TransInfo children reordered", lambda e: _dx(e, "TransInfo/CopMsgId").addprevious(_dx(e, "TransInfo/SenderId"))),
        ("full AddInfo", lambda e: _add_info(e, _dxp("FileName", "order.xml"), _dxp("IcCard", "1234567890123"), _biz_key(5), _dxp("IsText", Encode="UTF-8"), _foreign_recmap())),
        ("AddInfo with 6 business keys", lambda e: _add_info(e, _biz_key(6))),
        ("AddInfo IsText without Encode", lambda e: _add_info(e, _dxp("IsText"))),
        ("AddInfo IsText with text content", lambda e: _add_info(e, _dxp("IsText", "x", Encode="UTF-8"))),
        ("AddInfo children reordered", lambda e: _add_info(e, _dxp("IcCard", "1"), _dxp("FileName", "a.xml"))),
        ("AddInfo empty FileName", lambda e: _add_info(e, _dxp("FileName", ""))),
        ("AddInfo before Data", lambda e: _dx(e, "Data").addprevious(_dxp("AddInfo"))),
        ("with the sample ds:Signature", lambda e: e.append(etree.fromstring(etree.tostring(sample_sig)))),
        ("ds:Signature with an Object", lambda e: e.append(_sig_with_object(sample_sig))),
        ("ds:Signature before AddInfo", lambda e: (_add_info(e), _dx(e, "AddInfo").addprevious(etree.fromstring(etree.tostring(sample_sig))))),
        ("unknown child", lambda e: e.append(_dxp("Extra", "1"))),
        ("no Data", lambda e: e.remove(_dx(e, "Data"))),
    ]


def _foreign_recmap() -> etree._Element:
    el = _dxp("RecMapId", "map-1", anything="goes")
    el.append(_foreign())
    return el


def _sig_with_object(sig: etree._Element) -> etree._Element:
    copy = etree.fromstring(etree.tostring(sig))
    copy.append(_ds("Object", "x"))
    return copy


def _dxp_rep() -> etree._Element:
    rep = etree.Element(_c(DXP, "DxpRep"), {"ver": "1.0"}, nsmap={"dxp": DXP})
    rep.append(_dxp("RecevierId", "DXPENT0000000001"))
    resp = etree.SubElement(rep, _c(DXP, "Response"))
    resp.append(_dxp("ResponseCode", "0"))
    results = etree.SubElement(resp, _c(DXP, "Results"))
    res = etree.SubElement(results, _c(DXP, "Result"))
    res.append(_dxp("RecId", "DXPEDCCEB0000002"))
    res.append(_dxp("Code", "0"))
    resp.append(_dxp("NoticeTime", "2024-03-01"))
    resp.append(etree.fromstring(etree.tostring(_envelope(b"x")[0])))
    resp[-1].tag = _c(DXP, "OriHead")
    return rep


def test_dxp_envelope_accepts_and_rejects() -> None:
    schema = dxp_schema()
    payload = samples()["CEB311Message"]
    good = _envelope(payload)
    assert schema.validate(good), schema.error_log
    assert base64.b64decode(_dx(good, "Data").text) == payload
    bad = _envelope(payload, trans_info=False)
    assert not schema.validate(bad)
    assert "TransInfo" in str(schema.error_log)
    rep = _dxp_rep()
    assert schema.validate(rep), schema.error_log


def test_dxp_envelope_same_verdict_as_official_terminal() -> None:
    if not OFFICIAL_TERMINAL.exists():
        pytest.skip("official terminal.xsd not available")
    payload = samples()["CEB621Message"]
    results = []
    for desc, fn in _envelope_mutations():
        env = _envelope(payload)
        fn(env)
        data = _serialize(env)
        results.append((desc, *_compare(official_terminal_schema(), dxp_schema(), data)))
    rep = _serialize(_dxp_rep())
    results.append(("DxpRep", *_compare(official_terminal_schema(), dxp_schema(), rep)))
    mismatches = [f"{d}\n{report}" for d, off, ours, report in results if off != ours]
    assert not mismatches, "envelope verdicts differ:\n" + "\n".join(mismatches)
    verdicts = [off for _, off, _, _ in results]
    assert verdicts.count(True) >= 5 and verdicts.count(False) >= 5, verdicts
