from agent.llm import LLMTimeout, ScriptedChatModel
from evals.simulators import ShownItem
from evals.simulators.leakage import find_leak, redact, title_variants
from evals.simulators.llm import LLMUserSimulator, item_attrs
from evals.sim_runner import run_sim
from evals.simulators.llm import simulator_factory
from helpers import tiny_movies
from sim_support import amelie_case, shining_case, tiny_service

CATALOG = tiny_movies()


def _sim(case, model=None, seed=0):
    return LLMUserSimulator(case, model=model, item_attributes=lambda i: item_attrs(CATALOG, i), seed=seed)


def test_title_variants_and_fuzzy_match():
    assert title_variants("Shining, The (1980)") == ["the shining", "shining"]
    assert find_leak("maybe something like the shinning?", ["Shining, The (1980)"]) is not None
    assert find_leak("something creepy from the eighties", ["Shining, The (1980)"]) is None
    assert find_leak("can you look it up", ["Up (2009)"]) is None  # short titles need the exact capitalised word
    assert find_leak("I loved Up as a kid", ["Up (2009)"]) is not None
    assert redact("The Shining, yes the shining", ["Shining, The (1980)"]) == ("that one, yes that one", 2)


def test_leaking_simulator_is_regenerated_then_redacted():
    model = ScriptedChatModel(["I want The Shining, obviously.", "Just give me The Shining (1980)!"])
    reply = _sim(shining_case(), model).opening()
    assert reply.leaks == 2 and reply.redactions == 1
    assert "shining" not in reply.text.lower()
    assert "Do not name any title" in model.calls[1].messages[-1].content
    assert "Shining" not in model.calls[0].messages[-1].content  # the hidden title is never in its prompt


def test_one_regeneration_is_enough_when_the_second_text_is_clean():
    model = ScriptedChatModel(["Something like the shinning", "Something creepy and scary"])
    reply = _sim(shining_case(), model).opening()
    assert (reply.leaks, reply.redactions, reply.text) == (1, 0, "Something creepy and scary")


def test_once_shown_the_title_may_be_said():
    model = ScriptedChatModel(["I'll take The Shining, thanks!"])
    sim = _sim(shining_case(), model)
    shown = [ShownItem(item_id="4", title="Alien (1979)"), ShownItem(item_id="7", title="Shining, The (1980)")]
    reply = sim.react("Here you go:\n1. Alien (1979)\n2. Shining, The (1980)", shown)
    assert reply.accepted_id == "7" and reply.leaks == 0 and "Shining" in reply.text
    assert "number 2" in model.calls[0].messages[-1].content


def test_leaking_run_is_caught_and_counted(tmp_path):
    model = ScriptedChatModel(default=lambda request: "Honestly I just want The Shining.")
    records = run_sim([shining_case(patience=3)], service_factory=lambda case: tiny_service(),
                      simulator_factory=simulator_factory(model), sessions=1, seed=0, out_jsonl=tmp_path / "r.jsonl")
    record = records[0]
    assert record["leak_count"] >= 2 and record["redactions"] >= 1
    before_shown = []
    for turn in record["transcript"]:
        if turn["role"] == "assistant" and "7" in turn["shown"]:
            break
        if turn["role"] == "user":
            before_shown.append(turn["text"])
    assert before_shown and not any("shining" in text.lower() for text in before_shown)


def test_questions_answered_by_code_yes_iff_target_has_it():
    sim = _sim(shining_case())
    assert sim.react("Are you in the mood for something genre \u201cHorror\u201d?", []).text.startswith("Yes, Horror")
    assert sim.react("Would you like something from the 1990s?", []).text == "No, not really."
    assert sim.react("Would you like something Comedy?", []).text.startswith("No, no Comedy")


def test_shown_items_accepted_or_rejected_by_code():
    sim = _sim(amelie_case())
    reply = sim.react("Picks:", [ShownItem(item_id="7", title="The Shining (1980)")])
    assert reply.accepted_id is None and "no Horror" in reply.text  # a must-not attribute was shown
    reply = sim.react("Picks:", [ShownItem(item_id="1", title="Toy Story"), ShownItem(item_id="2", title="Shrek")])
    assert reply.accepted_id == "2" and "number 2" in reply.text  # acceptable, not the target


def test_reflection_when_satisfaction_drops_then_leave_when_fed_up():
    sim = _sim(amelie_case(patience=8))
    horror = [ShownItem(item_id="7", title="The Shining (1980)")]
    replies = [sim.react("Picks:", horror) for _ in range(3)]
    assert replies[0].reflection is None and replies[0].satisfaction > 0.5
    reflection = replies[1].reflection
    assert reflection.kind == "avoid" and reflection.attribute.value == "Horror" and reflection.turn == 2
    assert "No more Horror" in reflection.text
    assert replies[2].leave and not replies[1].leave  # satisfaction ran out before patience did


def test_leave_when_patience_runs_out():
    sim = _sim(amelie_case(patience=3))
    replies = [sim.react("Would you like something Romance?", []) for _ in range(3)]
    assert [r.leave for r in replies] == [False, False, True]
    assert replies[1].satisfaction < replies[0].satisfaction  # asked the same thing again


def test_uncooperative_users_sometimes_dodge():
    texts = {_sim(shining_case(cooperativeness="uncooperative"), seed=s).react("Something Horror?", []).text
             for s in range(20)}
    assert "I don't know, just show me something." in texts and any(t.startswith("Yes") for t in texts)


def test_model_failure_falls_back_to_the_template():
    reply = _sim(shining_case(), ScriptedChatModel([LLMTimeout("slow")])).opening()
    assert reply.text.startswith("Hi, I'm looking for a Horror movie") and reply.fallbacks == ["simulator: LLMTimeout"]


def _soft_case():
    case = amelie_case().model_dump(mode="json")
    case["need"].update(target_ids=[], target_titles=[], acceptable_ids=[], soft="something set in Paris")
    return type(amelie_case()).model_validate(case)


def test_soft_needs_are_judged_by_the_llm_within_the_code_constraints():
    model = ScriptedChatModel(['{"pick": 1}', "I'll take it!"])
    sim = _sim(_soft_case(), model)
    shown = [ShownItem(item_id="7", title="The Shining (1980)"), ShownItem(item_id="8", title="Amelie (2001)")]
    reply = sim.react("Picks:", shown)
    assert reply.accepted_id == "8" and reply.llm_calls == 2
    assert model.calls[0].json_schema["properties"]["pick"]["enum"] == [0, 1]  # only Amelie passes the code check
    model = ScriptedChatModel(['{"pick": 0}', "None of these."])
    assert _sim(_soft_case(), model).react("Picks:", shown).accepted_id is None


def test_the_simulated_users_vocabulary_order_does_not_depend_on_string_hashing():
    """Ties in length ("Horror", "creepy", "Comedy") must not be broken by set order, which changes with
    PYTHONHASHSEED from one process to the next (a replay then answered about another attribute)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("from evals.simulators.mindset import Mind; from sim_support import shining_case; "
            "print([str(a) for a in Mind(shining_case(), seed=0, item_attributes=lambda i: set()).vocabulary])")
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    seen = {subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONHASHSEED": str(n)}, check=True,
                           capture_output=True, text=True).stdout for n in (1, 2, 3, 4)}
    assert len(seen) == 1
