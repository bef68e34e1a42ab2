"""Journey maps: the stage × KPI map and its canvas, pain points, journey differences and segments."""

from journeylab.maps.behaviour import user_features
from journeylab.maps.canvas import JourneyCanvasResult, journey_canvas
from journeylab.maps.journey_diff import JourneyDiffResult, compare_journeys, transition_counts
from journeylab.maps.journey_map_result import JourneyMapResult
from journeylab.maps.journey_maps import journey_map
from journeylab.maps.pain_result import PainPointsResult
from journeylab.maps.pains import Step, pain_points, response_speed
from journeylab.maps.periods import Period, resolve_period
from journeylab.maps.personas import PersonasResult, journey_personas
from journeylab.maps.segments import SegmentsResult, segment_users

__all__ = [
    "journey_map",
    "JourneyMapResult",
    "Period",
    "resolve_period",
    "journey_canvas",
    "JourneyCanvasResult",
    "pain_points",
    "PainPointsResult",
    "Step",
    "response_speed",
    "compare_journeys",
    "transition_counts",
    "JourneyDiffResult",
    "user_features",
    "segment_users",
    "journey_personas",
    "SegmentsResult",
    "PersonasResult",
]
